"""The batched multi-tree engine vs one tree at a time, one request at a time (as the reference code runs).

    python benchmarks/bench_search.py [--negatives 16] [--depth 1] [--tokens 64] [--backend hf|vllm]

Both searches run on the embedded model under a deterministic setting
(greedy refinements and greedy single-vote judging), so their trees must
be identical; the script checks that, then prints (a) the wall-clock
speedup of the engine (target >= 5x) and (b) tokens/s during the batched
search / tokens/s of a raw batched generate on the same refine requests
(hf: `model.generate` at the same batch size; vllm: one `LLM.chat` call of
all of them), both stopping at end of turn (target >= 0.9).
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from spar.backends import SamplingParams, make_backend
from spar.config import SearchConfig
from spar.constraints import get
from spar.judge import LLMJudge
from spar.records import Instruction
from spar.search.engine import Root, search_trees

TASKS = ["Write a short note to a neighbor about a lost cat.", "Describe a rainy morning in a city.",
         "Explain why the sky is blue.", "Give advice to a new runner.", "Write a product blurb for a desk lamp.",
         "Summarize the benefits of reading.", "Write a thank-you message to a coach.", "Describe a busy market."]
KINDS = ["punctuation:no_comma", "startend:quotation", "change_case:english_lowercase", "detectable_format:title",
         "startend:end_checker", "length_constraints:number_words"]


class Counting:
    """Counts completion tokens; with `single`, sends one chat and one sample per request."""

    def __init__(self, backend, single: bool):
        self.backend, self.single, self.tokens, self.name = backend, single, 0, backend.name

    def generate(self, chats, params):
        if not self.single:
            out = self.backend.generate(chats, params)
        else:
            out = [[self.backend.generate([c], params.with_(n=1))[0][0] for _ in range(params.n)] for c in chats]
        # greedy rows are one decode copied n times: count it once
        self.tokens += sum(c.completion_tokens for row in out for c in (row if params.temperature > 0 else row[:1]))
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--negatives", type=int, default=16)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    args = ap.parse_args()
    backend = make_backend("hf", args.model, batch_size=48) if args.backend == "hf" else make_backend(
        "vllm", args.model)
    rng = random.Random(0)
    instructions = []
    for k in range(args.negatives):
        c = get(KINDS[k % len(KINDS)])
        kw = c.sample_kwargs(rng)
        prompt = f"{TASKS[k % len(TASKS)]} {c.describe(kw)}"
        instructions.append(Instruction(f"b{k}", prompt, [{"id": c.id, "kwargs": kw}]))
    chats = [[{"role": "user", "content": i.prompt}] for i in instructions]
    answers = backend.generate(chats, SamplingParams(max_new_tokens=args.tokens))
    critique = "The response does not follow every requirement."
    roots = [Root(i, a[0].text, critique) for i, a in zip(instructions, answers)]
    cfg = SearchConfig(max_depth=args.depth, temperature=0.0, max_new_tokens=args.tokens)

    def run(single: bool):
        b = Counting(backend, single)
        judge = LLMJudge(b, n=1, temperature=0.0, max_new_tokens=args.tokens, resample=0)
        t = time.perf_counter()
        if single:
            trees = [tree for r in roots for tree in search_trees([r], b, judge, cfg)]
        else:
            trees = search_trees(roots, b, judge, cfg)
        return trees, time.perf_counter() - t, b.tokens

    batched, t_batched, tok_batched = run(single=False)
    sequential, t_seq, _ = run(single=True)
    same = sum(a == b for a, b in zip(batched, sequential))

    # raw batched generate at the engine's batch size: the first level's refine requests, stopping at eos as usual
    from spar.prompts import refine_chat

    chats = [refine_chat(r.instruction.prompt, r.response, r.critique) for r in roots]
    if args.backend == "vllm":
        t = time.perf_counter()
        out = backend.generate(chats, SamplingParams(max_new_tokens=args.tokens))
        raw_tps = sum(row[0].completion_tokens for row in out) / (time.perf_counter() - t)
    else:
        model, tok = backend.model, backend.tokenizer
        tok.padding_side = "left"
        enc = tok([backend.render(c) for c in chats], return_tensors="pt", padding=True, add_special_tokens=False)
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=args.tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        elapsed = time.perf_counter() - t
        new_tokens = out[:, enc["input_ids"].shape[1]:]
        eos = model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        counted = sum(next((j for j, x in enumerate(row.tolist()) if x in eos), len(row)) for row in new_tokens)
        raw_tps = counted / elapsed
    backend.close()

    refinements = sum(t.calls["refine"] for t in batched)
    print(f"{args.backend} backend, {len(roots)} negatives, BFS depth {args.depth}, {refinements} refinements, greedy, "
          f"{args.tokens} max new tokens")
    print(f"batched engine     : {t_batched:7.1f} s")
    print(f"one at a time      : {t_seq:7.1f} s")
    print(f"identical trees    : {same}/{len(roots)}")
    print(f"(a) speedup                      = {t_seq / t_batched:.2f}x  (target >= 5x)")
    print(f"(b) search tokens/s / raw batched = {tok_batched / t_batched:.1f} / {raw_tps:.1f} = "
          f"{tok_batched / t_batched / raw_tps:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
