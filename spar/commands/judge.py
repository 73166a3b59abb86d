"""`spar judge`: judge responses with the LLM, verifier or hybrid judge.

    spar judge --in responses.jsonl --instructions instructions.jsonl --out judgments.jsonl \\
        --judge hybrid --model smollm2-135m-instruct --n 5
    spar judge --help     # every judge.* setting of the config is a flag, with the same default

Reads Response records and the Instruction records they answer; writes one
Judgment record per response, appended chunk by chunk (each chunk is one
batched judge call), so a rerun skips what is judged already.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spar.config import ConfigError, JudgeConfig, ModelConfig, RunConfig, add_flags, flags_config
from spar.commands.generate import add_backend_flags, backend_options
from spar.judge import judge_from_config
from spar.records import (JsonlAppender, Judgment, RecordError, Response, from_dict, iter_lines, keys_in,
                          read_instructions, refuse_overwrite, require_records)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="JSONL of Response records")
    p.add_argument("--instructions", required=True, help="JSONL of the Instruction records they answer")
    p.add_argument("--out", required=True, help="JSONL of Judgment records (appended; a rerun resumes)")
    p.add_argument("--chunk", type=int, default=32, help="responses per batched judge call (default: 32)")
    # the judge's settings are the config's judge.* keys, the model the config's refiner.*: same names and defaults
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge"})
    add_flags(p, ModelConfig, "refiner.", rename={"name": "--model"}, exclude=("options",))
    add_flags(p, RunConfig, "", only=("seed",))
    add_backend_flags(p)


def settings(args: argparse.Namespace) -> tuple[JudgeConfig, ModelConfig, int]:
    """The judge, the refiner model and the seed the flags ask for (config defaults where not given)."""
    if args.chunk < 1:
        raise ConfigError(f"command line '--chunk {args.chunk}': must be >= 1")
    return (flags_config(args, JudgeConfig, "judge."), flags_config(args, ModelConfig, "refiner."),
            flags_config(args, RunConfig, "").seed)


def open_backend(model: ModelConfig, options: dict | None = None):
    """The backend of `model` (refiner.* or actor.* settings), as the loop opens it; `options` from
    `backend_options` (the openai flags), else the model's own."""
    from spar.backends import make_backend, resolve

    if options is None:
        options = {"batch_size": model.batch_size} if resolve(model.backend) == "hf" else {}
        options.update(model.options)
    return make_backend(model.backend, model.name, **options)


def read_answers(path: str, cls, instructions: dict, instructions_path: str, what: str) -> list:
    """Records of `cls` (Response, Negative) from `path`, each checked and answering a known instruction;
    an empty file is refused. Errors name file:line."""
    records = []
    for where, obj in iter_lines(path):
        r = from_dict(cls, obj, where)
        if r.instruction_id not in instructions:
            raise RecordError(f"{where}: instruction id {r.instruction_id!r} is not in {instructions_path}")
        records.append(r)
    return require_records(records, path, what)


def check_judge_context(backend, items: list, max_new_tokens: int, wheres: list[str]) -> None:
    """Refuse up front a judge prompt (instruction + response) the judge model cannot hold, naming file:line."""
    from spar.commands.generate import check_context
    from spar.prompts import judge_chat

    check_context(backend, [judge_chat(inst.prompt, text) for inst, text in items], max_new_tokens, wheres)


def judgment_of(response: Response, verdict) -> Judgment:
    return Judgment(instruction_id=response.instruction_id, response_id=response.id, votes=verdict.votes,
                    value=verdict.value, label=verdict.label, verifier=verdict.verifier, critique=verdict.critique)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    judge_cfg, model_cfg, seed = settings(args)  # bad flags stop here, before any file is read
    options = backend_options(args, model_cfg) if judge_cfg.kind != "verifier" else None
    refuse_overwrite(args.out, "--out", {"--in": args.inp, "--instructions": args.instructions})
    instructions = {i.id: i for i in read_instructions(args.instructions)}
    responses = read_answers(args.inp, Response, instructions, args.instructions, "Response records")
    wheres = [w for w, _ in iter_lines(args.inp)]
    out = Path(args.out)
    done = keys_in(out, "response_id")
    todo = [(r, w) for r, w in zip(responses, wheres) if r.id not in done]
    if not todo:
        print(f"all {len(responses)} responses already judged in {out}; nothing to do")
        return 0
    backend = None if judge_cfg.kind == "verifier" else open_backend(model_cfg, options)
    if backend is not None:
        check_judge_context(backend, [(instructions[r.instruction_id], r.text) for r, _ in todo],
                            judge_cfg.max_new_tokens, [w for _, w in todo])
    judge = judge_from_config(judge_cfg, backend, seed)
    todo = [r for r, _ in todo]
    counts = {"yes": 0, "no": 0, "abstain": 0}
    with (JsonlAppender(out, lazy=True) as w,
          tqdm(total=len(todo), desc="judge", unit="response", file=sys.stderr) as bar):
        for start in range(0, len(todo), args.chunk):
            chunk = todo[start : start + args.chunk]
            for r, v in zip(chunk, judge.judge([(instructions[r.instruction_id], r.text) for r in chunk])):
                w.write(judgment_of(r, v))
                counts[v.label] += 1
            bar.update(len(chunk))
    print(f"judged {len(todo)} responses into {out}: {counts['yes']} yes, {counts['no']} no, "
          f"{counts['abstain']} abstain")
    return 0
