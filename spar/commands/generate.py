"""`spar generate`: answer instructions or chats with any backend.

    spar generate --model smollm2-135m-instruct --in builtin:demo --out runs/demo/responses.jsonl
    spar generate --model tiny-random --in chats.jsonl --out out.jsonl --n 4 --temperature 0.9

Input lines are Instruction records (`{"id", "prompt", ...}`) or chats
(`{"id", "messages": [...]}`); the whole file is validated before any
generation. Output lines are Response records, appended batch by batch
through the loop's own sample stage (selfplay/collect.sample_chats: batch c
samples with seed `seed * 100003 + c`), so a crash loses at most the batch
in flight, a rerun skips ids already there, and a run resumed after a crash
writes what an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spar.backends import SamplingParams
from spar.config import JudgeConfig, ModelConfig, add_flags, flags_config
from spar.errors import UserError
from spar.records import (Instruction, RecordError, Response, check_constraints, iter_jsonl, iter_lines,
                          refuse_overwrite, require_records)

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
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="above 1 discourages repeating a token already in the chat (1 = off)")
    add_backend_flags(p)
    p.add_argument("--strategy", default=None, choices=["greedy", "best_of_n", "bfs", "dfs"],
                   help="inference-time decoding with a judge (default: plain sampling with the flags above)")
    p.add_argument("--budget", type=int, default=4, help="with --strategy: generated responses allowed per input")
    p.add_argument("--refiner", default=None, help="with --strategy: refiner/judge model (default: --model)")
    # with --strategy: the config's judge.* keys; --judge is judge.kind, the rest --judge-<key>
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge"}, prefix="--judge-")


def settings(args: argparse.Namespace) -> tuple[ModelConfig, JudgeConfig]:
    """The model and (for --strategy) judge settings the flags ask for (config defaults where not given)."""
    return flags_config(args, ModelConfig, "actor."), flags_config(args, JudgeConfig, "judge.")


def load_instructions(source: str) -> list[Instruction]:
    """Inputs as Instruction records (a chat becomes its last user turn), constraints kept."""
    return [Instruction(id=key, prompt=chat[-1]["content"], constraints=cons) for key, chat, cons in _load(source)]


def _load(source: str) -> list[tuple[str, list[dict], list[dict]]]:
    return [(key, chat, cons) for key, chat, cons, _ in load_records(source)]


def load_records(source: str) -> list[tuple[str, list[dict], list[dict], str]]:
    """(id, chat, constraints, file:line) for every input; the whole file is checked first, errors name file:line."""
    if source == "builtin:demo":
        return [(i, [{"role": "user", "content": p}], [], f"builtin:demo[{k}]") for k, (i, p) in enumerate(DEMO)]
    if source.startswith("builtin:"):
        raise UserError(f"unknown built-in input {source!r}; the built-in set is builtin:demo")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"--in {source}: no such file")
    items, seen = [], {}
    for where, obj in iter_lines(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), (str, int)) or isinstance(obj.get("id"), bool):
            raise RecordError(f"{where}: each line needs an \"id\" (a string) and a \"prompt\" or \"messages\"")
        key = str(obj["id"])
        if key in seen:
            raise RecordError(f"{where}: duplicate id {key!r} (first on line {seen[key].rsplit(':', 1)[1]}); ids must "
                              f"be unique so a rerun can resume")
        seen[key] = where
        messages = obj.get("messages")
        if isinstance(messages, list) and messages and all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in ROLES for m in messages
        ):
            chat = obj["messages"]
        elif isinstance(obj.get("prompt"), str) and "messages" not in obj:
            chat = [{"role": "user", "content": obj["prompt"]}]
        else:
            raise RecordError(
                f"{where}: id {key!r} has neither a string \"prompt\" nor \"messages\" as a non-empty list of "
                f"{{\"role\": user|assistant|system, \"content\": \"...\"}} objects"
            )
        items.append((key, chat, check_constraints(obj.get("constraints") or [], where), where))
    return require_records(items, source, "inputs (instructions or chats)")


ROLES = ("user", "assistant", "system")


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """The openai backend's connection settings as flags (in a config they are actor/refiner.options.<key>)."""
    p.add_argument("--base-url", action="append", default=None,
                   help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1 (repeatable: several servers)")
    p.add_argument("--timeout", type=float, default=None, help="openai backend: seconds per request (default: 120)")
    p.add_argument("--concurrency", type=int, default=None, help="openai backend: requests in flight (default: 16)")
    p.add_argument("--max-retries", type=int, default=None,
                   help="openai backend: retries of a failed request (default: 8)")
    p.add_argument("--api-key-env", default=None,
                   help="openai backend: environment variable holding the API key (default: OPENAI_API_KEY)")


def backend_options(args: argparse.Namespace, model: ModelConfig) -> dict:
    """Constructor options for `model`'s backend from its settings and the openai flags; checked before a model
    loads (a flag of another backend, or a value out of range, is a UserError naming the flag)."""
    given = {flag: getattr(args, dest, None) for flag, dest in (
        ("--base-url", "base_url"), ("--timeout", "timeout"), ("--concurrency", "concurrency"),
        ("--max-retries", "max_retries"), ("--api-key-env", "api_key_env"))}
    given = {k: v for k, v in given.items() if v is not None}
    if given and model.backend != "openai":
        flag = next(iter(given))
        raise UserError(f"{flag}: an openai backend setting, but the backend is {model.backend}; "
                        f"add --backend openai, or drop {flag}")
    for flag, ok, what in (("--timeout", lambda x: x > 0, "> 0 seconds"), ("--concurrency", lambda x: x >= 1, ">= 1"),
                           ("--max-retries", lambda x: x >= 0, ">= 0")):
        if flag in given and not ok(given[flag]):
            raise UserError(f"command line '{flag} {given[flag]}': must be {what}")
    options = model.engine_options()
    names = {"--base-url": "base_urls", "--timeout": "timeout", "--concurrency": "concurrency",
             "--max-retries": "max_retries", "--api-key-env": "api_key_env"}
    options.update({names[flag]: value for flag, value in given.items()})
    from spar.backends import check_options

    check_options(model.backend, options, "the command line")
    return options


def check_flags(args: argparse.Namespace) -> tuple[ModelConfig, JudgeConfig, SamplingParams, dict]:
    """Every flag checked (model, judge, sampling, backend options, budget), before any file is read."""
    model, judge = settings(args)
    params = SamplingParams(
        n=args.n, temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
        stop=tuple(args.stop), seed=args.seed, repetition_penalty=args.repetition_penalty,
    )
    if args.strategy and args.budget < 1:
        raise UserError(f"command line '--budget {args.budget}': must be >= 1 (generated responses per input)")
    if not args.strategy and args.refiner:
        raise UserError("--refiner: only used with --strategy (the model that judges and refines); add --strategy "
                        "or drop --refiner")
    return model, judge, params, backend_options(args, model)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spar.backends import make_backend
    from spar.selfplay.collect import sample_chats
    from spar.selfplay.rundir import unfinished

    model, _, params, options = check_flags(args)  # bad flags stop here, before any file is read
    refuse_overwrite(args.out, "--out", {"--in": None if args.inp.startswith("builtin:") else args.inp})
    if args.strategy:
        return run_strategy(args)
    records = load_records(args.inp)
    items = [(k, c) for k, c, _, _ in records]
    out = Path(args.out)
    todo = unfinished(items, lambda x: x[0], out, lambda r: r["instruction_id"])
    if not todo:
        print(f"all {len(items)} inputs already answered in {out}; nothing to do")
        return 0
    backend = make_backend(model.backend, model.name, **options)
    where = {k: w for k, _, _, w in records}
    check_context(backend, [c for _, c in todo], params.max_new_tokens, [where[k] for k, _ in todo])
    # the loop's sample stage: a chunk of batch_size // n inputs per backend call, chunk c sampled with seed
    # seed * 100003 + c, so a rerun after a crash samples the unfinished chunks as an uninterrupted run would
    with tqdm(total=len(items), desc="generate", unit="input", file=sys.stderr) as bar:
        sample_chats(items, backend, params, out, max(1, model.batch_size // params.n), bar.update, append=True)
    new = {k for k, _ in todo}
    written = [r for r in iter_jsonl(out) if r["instruction_id"] in new]
    done = len(items) - len(todo)
    print(f"wrote {len(written)} responses for {len(todo)} inputs to {out}"
          + (f" ({done} inputs were already done)" if done else ""))
    for r in written[-3:]:
        print(json.dumps({"id": r["instruction_id"], "text": r["text"][:200]}, ensure_ascii=False))
    return 0


def check_context(backend, chats: list, max_new_tokens: int, wheres: list[str]) -> None:
    """Refuse, before generating, a chat the model cannot hold (prompt + max_new_tokens over its context),
    naming its file:line. Backends that cannot tell (a remote server) are left to refuse it themselves."""
    from spar.backends.base import PromptTooLong

    check = getattr(backend, "check_prompts", None)
    if check is None:
        return
    try:
        check(chats, max_new_tokens)
    except PromptTooLong as e:
        raise PromptTooLong(f"{wheres[e.index]}: {e}", e.index) from None


def run_strategy(args: argparse.Namespace) -> int:
    """--strategy: inference-time tree search (or best-of-N) with a judge; one answer per input."""
    from spar.backends import make_backend
    from spar.decoding import decode
    from spar.judge import judge_from_config
    from spar.selfplay.rundir import run_chunked, unfinished

    model, judge_cfg, _, options = check_flags(args)
    records = load_records(args.inp)
    instructions = [Instruction(id=key, prompt=chat[-1]["content"], constraints=cons) for key, chat, cons, _ in records]
    out = Path(args.out)
    todo = unfinished(instructions, lambda i: i.id, out, lambda r: r["instruction_id"])
    if not todo:
        print(f"all {len(instructions)} inputs already answered in {out}; nothing to do")
        return 0
    actor = make_backend(model.backend, model.name, **options)
    refiner = make_backend(model.backend, args.refiner, **options) if args.refiner else actor
    where = {k: w for k, _, _, w in records}
    check_context(actor, [[{"role": "user", "content": i.prompt}] for i in todo], args.max_new_tokens,
                  [where[i.id] for i in todo])
    judge = judge_from_config(judge_cfg, refiner, args.seed)
    generated = []

    def process(batch: list[Instruction], c: int) -> list[Response]:
        answers = decode(batch, actor, judge, refiner, strategy=args.strategy, budget=args.budget,
                         max_new_tokens=args.max_new_tokens, seed=args.seed)
        generated.extend(a.generated for a in answers)
        return [Response(instruction_id=i.id, index=0, text=a.text, model=f"{actor.name}+{args.strategy}")
                for i, a in zip(batch, answers)]

    # one chunk holding every input: the decoding engine advances all of their trees together
    run_chunked(instructions, lambda i: i.id, out, len(instructions), process, lambda r: r["instruction_id"],
                append=True)
    used = sum(generated)
    print(f"wrote {len(todo)} answers ({args.strategy}, budget {args.budget}; {used} responses generated) to {out}")
    return 0
