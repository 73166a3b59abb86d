"""Tokens/s of one engine by batch size: how large a batch the engine needs before it is busy.

    python benchmarks/bench_batch.py [--backend vllm] [--batches 1,8,16,48,96] [--tokens 128] [--dtype auto]

Each batch is that many different answer prompts; on vllm every answer is forced to `--tokens` new tokens
(no end of turn), so every batch size does the same work per sequence (hf answers may end sooner).
Per batch size it prints greedy tokens/s and, unless --no-top-p, seeded sampling at
temperature 0.9 with and without top-p 0.9 (the paper's setting for the actor's
samples; on a CPU the top-p sort of the whole vocabulary is not free). Ratios are
within this one run.
"""

from __future__ import annotations

import argparse
import time

from spar.backends import SamplingParams, make_backend
from spar.prompts import actor_chat

TOPICS = ("a dragon who keeps a library", "a busy fish market at dawn", "how rain forms over the sea",
          "training for a first marathon", "a city garden on a rooftop", "the history of the bicycle")


def tokens_per_s(backend, chats, params) -> float:
    t = time.perf_counter()
    out = backend.generate(chats, params)
    return sum(c.completion_tokens for row in out for c in row) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--batches", default="1,8,16,48,96")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--dtype", default="auto", help="vllm only: auto (spar's choice for this CPU), float32, bfloat16")
    ap.add_argument("--no-top-p", action="store_true", help="greedy only")
    args = ap.parse_args()
    options = {"dtype": args.dtype, "max_model_len": 2048} if args.backend == "vllm" else {"batch_size": 256}
    backend = make_backend(args.backend, args.model, **options)
    # no end of turn, so every sequence writes exactly --tokens
    force = {"ignore_eos": True} if args.backend == "vllm" else {}
    backend.generate([actor_chat("Hello")], SamplingParams(max_new_tokens=4))  # warm up
    settings = [("greedy", SamplingParams(max_new_tokens=args.tokens))]
    if not args.no_top_p:
        settings += [("sampled", SamplingParams(temperature=0.9, max_new_tokens=args.tokens, seed=1)),
                     ("sampled, top-p 0.9", SamplingParams(temperature=0.9, top_p=0.9, max_new_tokens=args.tokens,
                                                           seed=1))]
    print(f"{args.backend} ({args.dtype}), {args.tokens} new tokens per answer; tokens/s")
    print(f"{'batch':>6s}" + "".join(f" | {name:>18s}" for name, _ in settings))
    for size in [int(b) for b in args.batches.split(",")]:
        chats = [actor_chat(f"Write at length about {TOPICS[i % len(TOPICS)]} (part {i + 1}).") for i in range(size)]
        row = [tokens_per_s(_Forced(backend, force), chats, params) for _, params in settings]
        print(f"{size:6d}" + "".join(f" | {x:18.1f}" for x in row), flush=True)
    backend.close()


class _Forced:
    """Passes vLLM's ignore_eos to the engine (spar's SamplingParams has no such field: the loop never wants it)."""

    def __init__(self, backend, force: dict):
        self.backend, self.force = backend, force

    def generate(self, chats, params):
        if not self.force:
            return self.backend.generate(chats, params)
        import vllm

        b = self.backend
        sampling = vllm.SamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                       max_tokens=params.max_new_tokens, seed=params.seed, **self.force)
        outs = b.llm.chat([list(c) for c in chats], sampling, use_tqdm=False)
        from spar.backends.base import Completion

        return [[Completion(text=o.text, prompt_tokens=len(r.prompt_token_ids or []),
                            completion_tokens=len(o.token_ids), finish_reason="length") for o in r.outputs]
                for r in outs]


if __name__ == "__main__":
    main()
