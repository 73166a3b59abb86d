"""The embedded model as LLM judge: pointwise agreement with the verifier.

    python benchmarks/bench_judge_agreement.py [--n-instructions 100] [--votes 3] [--tokens 96]

100 synthesized constraint instructions (verifiable constraints only), one
greedy response each from the same model, judged by the LLM judge (n votes,
majority) and by code. Prints accuracy, precision and recall of "No" (the
positive class), the abstain count, and how often the verifier says No.
"""

from __future__ import annotations

import argparse
import json
import time

from spar.backends import SamplingParams, make_backend
from spar.constraints import is_soft
from spar.data.synth import synthesize
from spar.eval.judgment import pointwise_agreement
from spar.judge import LLMJudge
from spar.prompts import actor_chat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--n-instructions", type=int, default=100)
    ap.add_argument("--votes", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=96, help="max new tokens of an answer and of a judgment")
    ap.add_argument("--resample", type=int, default=0, help="extra vote rounds for ties")
    ap.add_argument("--batch", type=int, default=48)
    args = ap.parse_args()
    pool = [i for i in synthesize(4 * args.n_instructions, seed=7) if not any(is_soft(c["id"]) for c in i.constraints)]
    instructions = pool[: args.n_instructions]
    backend = make_backend("hf", args.model, batch_size=args.batch)
    t = time.time()
    answers = backend.generate([actor_chat(i.prompt) for i in instructions], SamplingParams(max_new_tokens=args.tokens))
    items = [(i, a[0].text) for i, a in zip(instructions, answers)]
    judge = LLMJudge(backend, n=args.votes, max_new_tokens=args.tokens, seed=0, resample=args.resample)
    metrics = pointwise_agreement(items, judge)
    metrics["seconds"] = round(time.time() - t)
    print(f"{args.model} as judge ({args.votes} votes) vs the verifier on {metrics['n']} constraint instructions:")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
