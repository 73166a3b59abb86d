"""Generation speed of the hf backend on the embedded model, as ratios measured in one run.

    python benchmarks/bench_generate.py [--model smollm2-135m-instruct] [--tokens 64]

Prints (i) hf backend tokens/s / a raw batched `model.generate` loop at the
same batch size and lengths (target >= 0.95), (ii) batched (16) / one
request at a time throughput (target >= 4x), (iii) peak RSS. Greedy, with
a fixed number of new tokens (no early stop), so every variant does the same work.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from spar.backends import SamplingParams, make_backend

PROMPTS = [
    "Write a short poem about the sea.",
    "Explain photosynthesis to a child.",
    "List three uses of a paperclip.",
    "Describe your ideal weekend in two sentences.",
    "Give me a recipe for pancakes.",
    "What is the difference between weather and climate?",
    "Write an email asking for a day off.",
    "Summarize the plot of Cinderella.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    backend = make_backend("hf", args.model, batch_size=args.batch)
    model, tok = backend.model, backend.tokenizer
    chats = [[{"role": "user", "content": PROMPTS[i % len(PROMPTS)] + f" ({i})"}] for i in range(args.batch)]
    params = SamplingParams(max_new_tokens=args.tokens)
    backend.generate(chats[:2], SamplingParams(max_new_tokens=4))  # warm up
    # Force exactly `tokens` new tokens everywhere (eos suppressed until then), so equal work.
    model.generation_config.min_new_tokens = args.tokens
    try:

        def raw() -> float:
            texts = [backend.render(c) for c in chats]
            tok.padding_side = "left"
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            t = time.perf_counter()
            with torch.inference_mode():
                model.generate(**enc, max_new_tokens=args.tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            return time.perf_counter() - t

        def ours(batch: list) -> float:
            t = time.perf_counter()
            out = backend.generate(batch, params)
            assert all(c.completion_tokens == args.tokens for r in out for c in r), "early stop: unequal work"
            return time.perf_counter() - t

        def one_by_one() -> float:
            return sum(ours([c]) for c in chats)

        tokens = args.batch * args.tokens
        # interleave the variants so machine noise hits them alike
        t_raw, t_ours, t_single = [], [], []
        for _ in range(2):
            t_raw.append(raw())
            t_ours.append(ours(chats))
        t_single.append(one_by_one())
    finally:
        model.generation_config.min_new_tokens = None
    raw_tps, ours_tps, single_tps = tokens / min(t_raw), tokens / min(t_ours), tokens / min(t_single)
    print(f"model {args.model}, batch {args.batch}, {args.tokens} new tokens each, {torch.get_num_threads()} threads")
    print(f"raw model.generate      : {raw_tps:8.1f} tokens/s")
    print(f"hf backend (batched)    : {ours_tps:8.1f} tokens/s")
    print(f"hf backend (one by one) : {single_tps:8.1f} tokens/s")
    print(f"(i)   backend / raw          = {ours_tps / raw_tps:.3f}   (target >= 0.95)")
    print(f"(ii)  batched / one-at-a-time = {ours_tps / single_tps:.2f}x  (target >= 4x)")
    print(f"(iii) peak RSS               = {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
