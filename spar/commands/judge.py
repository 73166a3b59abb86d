"""`spar judge`: judge responses with the LLM, verifier or hybrid judge.

    spar judge --in responses.jsonl --instructions instructions.jsonl --out judgments.jsonl \\
        --judge hybrid --model smollm2-135m-instruct --n 5
    spar judge --help     # every judge.* setting of the config is a flag, with the same default

Reads Response records and the Instruction records they answer; writes one
Judgment record per response, appended chunk by chunk (each chunk is one
batched judge call) through the loop's own judge stage
(selfplay/collect.judge_responses), so a rerun skips what is judged
already and a run resumed after a crash writes what an uninterrupted one
would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spar.config import ConfigError, JudgeConfig, ModelConfig, RunConfig, add_flags, flags_config
from spar.commands.generate import add_backend_flags, backend_options
from spar.judge import judge_from_config
from spar.records import (RecordError, Response, from_dict, iter_jsonl, iter_lines, read_instructions,
                          refuse_overwrite, require_records)


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
    from spar.backends import make_backend

    if options is None:
        options = model.engine_options()
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


def inputs_to_do(args: argparse.Namespace, cls, key, record_key, what: str) -> tuple[dict, list, dict, list]:
    """What `spar judge` and `spar search` read before any model loads: --out checked against the inputs, the
    instructions by id, the records of --in (each checked against its instruction), where each record is
    (file:line, by `key`), and the records not yet in --out (whose lines `record_key` names)."""
    from spar.selfplay.rundir import unfinished

    refuse_overwrite(args.out, "--out", {"--in": args.inp, "--instructions": args.instructions})
    instructions = {i.id: i for i in read_instructions(args.instructions)}
    records = read_answers(args.inp, cls, instructions, args.instructions, what)
    where = dict(zip((key(r) for r in records), (w for w, _ in iter_lines(args.inp))))
    return instructions, records, where, unfinished(records, key, Path(args.out), record_key)


def check_judge_context(backend, items: list, max_new_tokens: int, wheres: list[str]) -> None:
    """Refuse up front a judge prompt (instruction + response) the judge model cannot hold, naming file:line."""
    from spar.commands.generate import check_context
    from spar.prompts import judge_chat

    check_context(backend, [judge_chat(inst.prompt, text) for inst, text in items], max_new_tokens, wheres)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spar.selfplay.collect import judge_responses

    judge_cfg, model_cfg, seed = settings(args)  # bad flags stop here, before any file is read
    options = backend_options(args, model_cfg) if judge_cfg.kind != "verifier" else None
    instructions, responses, where, todo = inputs_to_do(args, Response, lambda r: r.id, lambda j: j["response_id"],
                                                        "Response records")
    out = Path(args.out)
    if not todo:
        print(f"all {len(responses)} responses already judged in {out}; nothing to do")
        return 0
    backend = None if judge_cfg.kind == "verifier" else open_backend(model_cfg, options)
    if backend is not None:
        check_judge_context(backend, [(instructions[r.instruction_id], r.text) for r in todo],
                            judge_cfg.max_new_tokens, [where[r.id] for r in todo])
    judge = judge_from_config(judge_cfg, backend, seed)
    # the loop's judge stage, one chunk per --chunk responses: a rerun after a crash judges the chunks that were
    # not finished, exactly as an uninterrupted run would
    with tqdm(total=len(responses), desc="judge", unit="response", file=sys.stderr) as bar:
        judge_responses(instructions, responses, judge, out, args.chunk, bar.update, per_response=True, append=True)
    new = {r.id for r in todo}
    labels = [j["label"] for j in iter_jsonl(out) if j["response_id"] in new]
    print(f"judged {len(todo)} responses into {out}: {labels.count('yes')} yes, {labels.count('no')} no, "
          f"{labels.count('abstain')} abstain")
    return 0
