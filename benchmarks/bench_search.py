"""The batched multi-tree engine vs one tree at a time, one request at a time (as the reference code runs).

    python benchmarks/bench_search.py [--negatives 16] [--depth 1] [--tokens 64] [--backend hf|vllm] [--prefill]
                                      [--rounds 1] [--no-single]

Both searches run on the embedded model under a deterministic setting
(greedy refinements and greedy single-vote judging), so their trees must
be identical; the script checks that, then prints (a) the wall-clock
speedup of the engine (target >= 5x) and (b) the batched search's tokens/s
over the backend's raw batched tokens/s on the same requests: every refine and
judge request the search made, replayed as one `generate` call per sampling
setting (all refinements of every level in one call, all judge prompts in
another), which is as batched as those requests can be; the search has to
send each tree's level by level (target >= 0.9). On vLLM, which batches
continuously, the search grows each tree in its own thread; the script also
runs it in lockstep (one call per level for all trees) to show the difference,
the two alternating `--rounds` times.
vLLM's prefix cache is emptied before each search and before the replay, so
none reuses another's prompts.
"""

from __future__ import annotations

import argparse
import random
import threading
import time


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
    """Counts completion tokens and records every request; with `single`, sends one chat and one sample per
    request. Passes the backend's `concurrent` flag on unless `lockstep` (or `single`): with it the search grows
    each tree in its own thread, without it all trees advance one call per level."""

    def __init__(self, backend, single: bool, lockstep: bool = False):
        self.backend, self.single, self.tokens, self.name = backend, single, 0, backend.name
        self.concurrent = getattr(backend, "concurrent", False) and not single and not lockstep
        self.requests: list[tuple[list, SamplingParams]] = []
        self.lock = threading.Lock()

    def generate(self, chats, params):
        if not self.single:
            out = self.backend.generate(chats, params)
        else:
            out = [[self.backend.generate([c], params.with_(n=1))[0][0] for _ in range(params.n)] for c in chats]
        with self.lock:
            self.requests.extend((c, params) for c in chats)
            # greedy rows are one decode copied n times: count it once
            self.tokens += sum(c.completion_tokens for row in out
                               for c in (row if params.temperature > 0 else row[:1]))
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--negatives", type=int, default=16)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--prefill", action="store_true", help="start refinements with the marker (the CPU presets do)")
    ap.add_argument("--rounds", type=int, default=1, help="searches of each kind, alternating")
    ap.add_argument("--no-single", action="store_true", help="skip the one-request-at-a-time search (and (a))")
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
    cfg = SearchConfig(max_depth=args.depth, temperature=0.0, max_new_tokens=args.tokens, prefill=args.prefill)

    def run(single: bool, lockstep: bool = False):
        b = Counting(backend, single, lockstep)
        judge = LLMJudge(b, n=1, temperature=0.0, max_new_tokens=args.tokens, resample=0)
        t = time.perf_counter()
        if single:
            trees = [tree for r in roots for tree in search_trees([r], b, judge, cfg)]
        else:
            trees = search_trees(roots, b, judge, cfg)
        return trees, time.perf_counter() - t, b

    # on a concurrent backend, lockstep and threaded searches alternate (lockstep first), `--rounds` times each, so
    # both see the same machine; the figures below are the last round's
    threaded = getattr(backend, "concurrent", False)
    for r in range(args.rounds):
        if threaded:
            forget_prompts(backend)
            lockstep, t_lockstep, counted_lockstep = run(single=False, lockstep=True)
        forget_prompts(backend)
        batched, t_batched, counted = run(single=False)
        if args.rounds > 1:
            print(f"round {r}: " + (f"lockstep {t_lockstep:.1f} s, " if threaded else "") + f"search {t_batched:.1f} s")
    tok_batched = counted.tokens
    if args.no_single:
        sequential, t_seq = batched, float("nan")
    else:
        sequential, t_seq, _ = run(single=True)
    same = sum(a == b for a, b in zip(batched, sequential))

    # the same requests, as batched as they can be: one call per sampling setting
    forget_prompts(backend)
    groups: dict[SamplingParams, list] = {}
    for chat, params in counted.requests:  # each level's seed differs; requests of all levels go as one call
        groups.setdefault(params.with_(seed=0), []).append(chat)
    t = time.perf_counter()
    raw_tokens = 0
    for params, chats in groups.items():
        out = backend.generate(chats, params)
        raw_tokens += sum(c.completion_tokens for row in out for c in (row if params.temperature > 0 else row[:1]))
    t_raw = time.perf_counter() - t
    backend.close()

    refinements = sum(t.calls["refine"] for t in batched)
    judged = sum(t.calls["judge"] for t in batched)
    print(f"{args.backend} backend, {len(roots)} negatives, BFS depth {args.depth}, {refinements} refinements "
          f"({judged} judged), greedy, {'prefilled, ' if args.prefill else ''}"
          f"{args.tokens} max new tokens")
    print(f"batched engine     : {t_batched:7.1f} s" + (" (each tree in its own thread)" if threaded else ""))
    if threaded:
        print(f"  in lockstep      : {t_lockstep:7.1f} s (one call per level for all trees; trees identical "
              f"{sum(a == b for a, b in zip(batched, lockstep))}/{len(roots)})")
    print(f"one at a time      : {t_seq:7.1f} s")
    print(f"identical trees    : {same}/{len(roots)}")
    print(f"(a) speedup                      = {t_seq / t_batched:.2f}x  (target >= 5x)")
    print(f"raw batched replay : {t_raw:7.1f} s ({len(counted.requests)} requests in {len(groups)} calls, "
          f"{raw_tokens} tokens; the search wrote {tok_batched})")
    raw = raw_tokens / t_raw
    print(f"(b) search tokens/s / raw batched = {tok_batched / t_batched:.1f} / {raw:.1f} = "
          f"{(tok_batched / t_batched) / raw:.2f}  (target >= 0.9)")
    if threaded:
        print(f"    in lockstep                   = {counted_lockstep.tokens / t_lockstep:.1f} / {raw:.1f} = "
              f"{(counted_lockstep.tokens / t_lockstep) / raw:.2f}")


def forget_prompts(backend) -> None:
    """Empty vLLM's prefix cache (hf keeps none)."""
    llm = getattr(backend, "llm", None)
    if llm is not None:
        llm.reset_prefix_cache()


if __name__ == "__main__":
    main()
