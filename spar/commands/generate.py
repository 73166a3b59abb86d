"""`spar generate`: answer instructions or chats with any backend.

    spar generate --model smollm2-135m-instruct --in builtin:demo --out runs/demo/responses.jsonl
    spar generate --model tiny-random --in chats.jsonl --out out.jsonl --n 4 --temperature 0.9

Input lines are Instruction records (`{"id", "prompt", ...}`) or chats
(`{"id", "messages": [...]}`); the whole file is validated before any
generation. Output lines are Response records, appended batch by batch, so
a crash loses at most the batch in flight; a rerun skips ids already there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spar.backends import SamplingParams
from spar.config import JudgeConfig, ModelConfig, add_flags, flags_config
from spar.errors import UserError
from spar.records import Instruction, JsonlAppender, RecordError, Response, iter_jsonl, keys_in

# A handful of instructions for the first run; several carry checkable constraints.
DEMO = [
    ("demo-1", "Write a haiku about autumn leaves. Do not use any commas."),
    ("demo-2", "Explain what a binary search does in exactly three sentences."),
    ("demo-3", "List four fruits that are rich in vitamin C, as a markdown bullet list."),
    ("demo-4", "Write a two-line thank-you note to a teacher, entirely in lowercase letters."),
    ("demo-5", "Give one tip for staying focused while studying. Answer in fewer than 30 words."),
    ("demo-6", "Describe the color blue to someone who cannot see, and end with the phrase 'That is blue.'"),
    ("demo-7", "Write a short product slogan for a reusable water bottle in ALL CAPITAL LETTERS."),
    ("demo-8", "What is the capital of France? Wrap your whole answer in double quotation marks."),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    # the model flags are the config's actor.* keys (same names and defaults); the sampling flags below are
    # plain generation's own (one greedy answer by default), not the loop's sample.* settings
    add_flags(p, ModelConfig, "actor.", rename={"name": "--model"}, exclude=("options",))
    p.add_argument("--in", dest="inp", required=True, help="JSONL of instructions or chats, or builtin:demo")
    p.add_argument("--out", required=True, help="JSONL of Response records (appended; a rerun resumes)")
    p.add_argument("--n", type=int, default=1, help="samples per input")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=192)
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-url", action="append", default=None, help="openai backend: server URL (repeatable)")
    p.add_argument("--strategy", default=None, choices=["greedy", "best_of_n", "bfs", "dfs"],
                   help="inference-time decoding with a judge (default: plain sampling with the flags above)")
    p.add_argument("--budget", type=int, default=4, help="with --strategy: generated responses allowed per input")
    p.add_argument("--refiner", default=None, help="with --strategy: refiner/judge model (default: --model)")
    # with --strategy: the config's judge.* keys; --judge is judge.kind, the rest --judge-<key>
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge"}, prefix="--judge-")


def settings(args: argparse.Namespace) -> tuple[ModelConfig, JudgeConfig]:
    """The model and (for --strategy) judge settings the flags ask for (config defaults where not given)."""
    return flags_config(args, ModelConfig, "actor."), flags_config(args, JudgeConfig, "judge.")


def load_inputs(source: str) -> list[tuple[str, list[dict]]]:
    """(id, chat) pairs from builtin:demo or a JSONL file; errors name file:line."""
    return [(key, chat) for key, chat, _ in _load(source)]


def load_instructions(source: str) -> list[Instruction]:
    """Inputs as Instruction records (a chat becomes its last user turn), constraints kept."""
    return [Instruction(id=key, prompt=chat[-1]["content"], constraints=cons) for key, chat, cons in _load(source)]


def _load(source: str) -> list[tuple[str, list[dict], list[dict]]]:
    if source == "builtin:demo":
        return [(i, [{"role": "user", "content": p}], []) for i, p in DEMO]
    if source.startswith("builtin:"):
        raise UserError(f"unknown built-in input {source!r}; the built-in set is builtin:demo")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"--in {source}: no such file")
    items, seen = [], set()
    for lineno, obj in enumerate(iter_jsonl(path), start=1):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict) or "id" not in obj:
            raise RecordError(f"{where}: each line needs an \"id\" and a \"prompt\" or \"messages\"")
        key = str(obj["id"])
        if key in seen:
            raise RecordError(f"{where}: duplicate id {key!r}; ids must be unique so a rerun can resume")
        seen.add(key)
        if isinstance(obj.get("messages"), list) and all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in obj["messages"]
        ):
            chat = obj["messages"]
        elif isinstance(obj.get("prompt"), str):
            chat = [{"role": "user", "content": obj["prompt"]}]
        else:
            raise RecordError(
                f"{where}: id {key!r} has neither a string \"prompt\" nor \"messages\" "
                "as a list of {\"role\", \"content\"} objects"
            )
        items.append((key, chat, obj.get("constraints") or []))
    return items


def generate_responses(backend, items, params: SamplingParams, out: Path, batch_size: int, progress=None) -> int:
    """Generate `params.n` answers per (id, chat) and append them to `out`; returns responses written."""
    written = 0
    per_call = max(1, batch_size // params.n)
    with JsonlAppender(out) as w:
        for start in range(0, len(items), per_call):
            batch = items[start : start + per_call]
            outs = backend.generate([chat for _, chat in batch], params)
            for (key, _), completions in zip(batch, outs):
                for index, c in enumerate(completions):
                    w.write(Response(instruction_id=key, index=index, text=c.text, model=backend.name))
                    written += 1
            if progress is not None:
                progress.update(len(batch))
    return written


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spar.backends import make_backend

    model, _ = settings(args)  # bad flags stop here, before any file is read
    if args.strategy:
        return run_strategy(args)
    items = load_inputs(args.inp)
    params = SamplingParams(
        n=args.n, temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
        stop=tuple(args.stop), seed=args.seed,
    )
    out = Path(args.out)
    done = keys_in(out, "instruction_id")
    todo = [(k, c) for k, c in items if k not in done]
    if not todo:
        print(f"all {len(items)} inputs already answered in {out}; nothing to do")
        return 0
    options = {"batch_size": model.batch_size} if model.backend == "hf" else {}
    if model.backend == "openai" and args.base_url:
        options["base_urls"] = args.base_url
    backend = make_backend(model.backend, model.name, **options)
    with tqdm(total=len(todo), desc="generate", unit="input", file=sys.stderr) as bar:
        written = generate_responses(backend, todo, params, out, model.batch_size, bar)
    print(f"wrote {written} responses for {len(todo)} inputs to {out}"
          + (f" ({len(done)} inputs were already done)" if done else ""))
    for r in list(iter_jsonl(out))[-min(3, written):]:
        print(json.dumps({"id": r["instruction_id"], "text": r["text"][:200]}, ensure_ascii=False))
    return 0


def run_strategy(args: argparse.Namespace) -> int:
    """--strategy: inference-time tree search (or best-of-N) with a judge; one answer per input."""
    from spar.backends import make_backend
    from spar.commands.judge import build_judge
    from spar.decoding import decode

    model, judge_cfg = settings(args)
    instructions = load_instructions(args.inp)
    out = Path(args.out)
    done = keys_in(out, "instruction_id")
    todo = [i for i in instructions if i.id not in done]
    if not todo:
        print(f"all {len(instructions)} inputs already answered in {out}; nothing to do")
        return 0
    options = {"batch_size": model.batch_size} if model.backend == "hf" else {}
    if model.backend == "openai" and args.base_url:
        options["base_urls"] = args.base_url
    actor = make_backend(model.backend, model.name, **options)
    refiner = make_backend(model.backend, args.refiner, **options) if args.refiner else actor
    judge = build_judge(judge_cfg, refiner, args.seed)
    answers = decode(todo, actor, judge, refiner, strategy=args.strategy, budget=args.budget,
                     max_new_tokens=args.max_new_tokens, seed=args.seed)
    with JsonlAppender(out) as w:
        for inst, a in zip(todo, answers):
            w.write(Response(instruction_id=inst.id, index=0, text=a.text, model=f"{actor.name}+{args.strategy}"))
    used = sum(a.generated for a in answers)
    print(f"wrote {len(todo)} answers ({args.strategy}, budget {args.budget}; {used} responses generated) to {out}")
    return 0
