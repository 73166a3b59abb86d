"""`spar judge`: judge responses with the LLM, verifier or hybrid judge.

    spar judge --in responses.jsonl --instructions instructions.jsonl --out judgments.jsonl \\
        --judge hybrid --model smollm2-135m-instruct --n 5

Reads Response records and the Instruction records they answer; writes one
Judgment record per response, appended chunk by chunk (each chunk is one
batched judge call), so a rerun skips what is judged already.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spar.records import Instruction, JsonlAppender, Judgment, RecordError, Response, keys_in, read_jsonl


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="JSONL of Response records")
    p.add_argument("--instructions", required=True, help="JSONL of the Instruction records they answer")
    p.add_argument("--out", required=True, help="JSONL of Judgment records (appended; a rerun resumes)")
    p.add_argument("--judge", default="hybrid", choices=["llm", "verifier", "hybrid"])
    p.add_argument("--model", default="smollm2-135m-instruct", help="the refiner model that judges")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm", "openai"])
    p.add_argument("--n", type=int, default=5, help="votes per response")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--resample", type=int, default=2, help="extra vote rounds for ties and all-invalid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=32, help="responses per batched judge call")


def judgment_of(response: Response, verdict) -> Judgment:
    return Judgment(instruction_id=response.instruction_id, response_id=response.id, votes=verdict.votes,
                    value=verdict.value, label=verdict.label, verifier=verdict.verifier, critique=verdict.critique)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spar.judge import make_judge

    instructions = {i.id: i for i in read_jsonl(args.instructions, Instruction)}
    responses = read_jsonl(args.inp, Response)
    for lineno, r in enumerate(responses, start=1):
        if r.instruction_id not in instructions:
            raise RecordError(f"{args.inp}:{lineno}: instruction id {r.instruction_id!r} is not in {args.instructions}")
    out = Path(args.out)
    done = keys_in(out, "response_id")
    todo = [r for r in responses if r.id not in done]
    if not todo:
        print(f"all {len(responses)} responses already judged in {out}; nothing to do")
        return 0
    backend = None
    if args.judge != "verifier":
        from spar.backends import make_backend

        backend = make_backend(args.backend, args.model)
    options = {} if args.judge == "verifier" else dict(
        n=args.n, temperature=args.temperature, max_new_tokens=args.max_new_tokens, resample=args.resample, seed=args.seed)
    judge = make_judge(args.judge, backend, **options)
    counts = {"yes": 0, "no": 0, "abstain": 0}
    with JsonlAppender(out) as w, tqdm(total=len(todo), desc="judge", unit="response", file=sys.stderr) as bar:
        for start in range(0, len(todo), args.chunk):
            chunk = todo[start : start + args.chunk]
            for r, v in zip(chunk, judge.judge([(instructions[r.instruction_id], r.text) for r in chunk])):
                w.write(judgment_of(r, v))
                counts[v.label] += 1
            bar.update(len(chunk))
    print(f"judged {len(todo)} responses into {out}: {counts['yes']} yes, {counts['no']} no, {counts['abstain']} abstain")
    return 0
