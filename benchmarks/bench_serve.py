"""`spar serve` under load: batching of concurrent requests, and tree-search latency.

    python benchmarks/bench_serve.py [--model smollm2-135m-instruct] [--tokens 32] [--rounds 2]

Starts `spar serve` in a subprocess on a free loopback port and drives it
with the official `openai` client (async), then prints:

(a) 64 greedy requests sent at once vs the same 64 sent one after another:
    the throughput ratio (the server batches concurrent requests into
    shared generate calls, so it should be well above 1);
(b) BFS at budget 4 from 16 concurrent clients, each sending `--rounds`
    requests back to back: p50/p95 latency and throughput, next to one BFS
    request at a time (the median of four). Every instruction carries a checkable
    constraint and the judge is hybrid, so code judges and the refiner
    writes the refinements; searches of all clients share refine batches.

The machine is shared and noisy: the script prints ratios measured in one
run, and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time

import openai

TASKS = ["Write a short note to a neighbor about a lost cat.", "Describe a rainy morning in a city.",
         "Explain why the sky is blue.", "Give advice to a new runner.", "Write a product blurb for a desk lamp.",
         "Summarize the benefits of reading.", "Write a thank-you message to a coach.", "Describe a busy market."]
CONSTRAINTS = [("punctuation:no_comma", "Do not use any commas."),
               ("change_case:english_lowercase", "Write everything in lowercase letters."),
               ("startend:quotation", "Wrap your whole answer in double quotation marks."),
               ("change_case:english_capital", "Write everything in capital letters.")]


def requests(count: int) -> list[tuple[str, str]]:
    """(prompt, constraint id) pairs, all distinct."""
    out = []
    for k in range(count):
        kind, sentence = CONSTRAINTS[k % len(CONSTRAINTS)]
        out.append((f"{TASKS[k % len(TASKS)]} {sentence} (Note {k}.)", kind))
    return out


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "spar.cli", "serve", "--model", args.model, "--port", "0", "--log-level", "warning",
           "--batch-size", "64", "--max-tokens", str(args.tokens), "--judge", "hybrid", "--judge-n", "3",
           "--judge-max-new-tokens", "64", "--search-max-new-tokens", str(args.refine_tokens)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "SPAR_API_KEY": ""})
    line = proc.stdout.readline()
    if " at http" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, line.split(" at ", 1)[1].split()[0]


async def ask(client, model, prompt, kind, spar=None) -> tuple[float, object]:
    start = time.perf_counter()
    r = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}],
        extra_body={"spar": {**(spar or {"strategy": "greedy"}), "constraints": [{"id": kind}]}})
    return time.perf_counter() - start, r


async def bench(args, url) -> None:
    async with openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0, timeout=600) as client:
        await ask(client, args.model, "Say hello.", "punctuation:no_comma")  # warm-up

        items = requests(64)
        start = time.perf_counter()
        for prompt, kind in items:
            await ask(client, args.model, prompt, kind)
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        answers = await asyncio.gather(*(ask(client, args.model, p, k) for p, k in items))
        concurrent = time.perf_counter() - start
        tokens = sum(r.usage.completion_tokens for _, r in answers)
        print(f"(a) 64 greedy requests, max_tokens {args.tokens}: sequential {sequential:.1f}s "
              f"({64 / sequential:.2f} req/s), concurrent {concurrent:.1f}s ({64 / concurrent:.2f} req/s, "
              f"{tokens / concurrent:.0f} tok/s): throughput ratio {sequential / concurrent:.2f}x", flush=True)

        bfs = {"strategy": "bfs", "budget": 4}
        items = requests(16 * args.rounds)
        # the baseline: the first few of the same requests, one at a time on an idle server
        alone = statistics.median([(await ask(client, args.model, p, k, spar=bfs))[0] for p, k in items[:4]])

        async def client_loop(c):
            out = []
            for prompt, kind in items[c * args.rounds:(c + 1) * args.rounds]:
                out.append(await ask(client, args.model, prompt, kind, spar=bfs))
            return out

        start = time.perf_counter()
        results = [x for rows in await asyncio.gather(*(client_loop(c) for c in range(16))) for x in rows]
        wall = time.perf_counter() - start
        latencies = sorted(t for t, _ in results)
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        responses = sum(r.model_extra["spar"]["responses"] for _, r in results)
        refined = sum(r.model_extra["spar"]["responses"] > 1 for _, r in results)
        right = sum((r.model_extra["spar"]["values"][0] or 0) > 0.5 for _, r in results)
        print(f"(b) BFS budget 4, 16 concurrent clients x {args.rounds} requests: p50 {p50:.1f}s, p95 {p95:.1f}s "
              f"(one at a time: median {alone:.1f}s, {1 / alone:.2f} req/s); {len(results)} requests in "
              f"{wall:.1f}s = {len(results) / wall:.2f} req/s ({alone * len(results) / wall:.2f}x); "
              f"{refined} searched, {responses} responses generated, {right} judged right", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=32, help="max_tokens of an answer")
    ap.add_argument("--refine-tokens", type=int, default=96, help="max_new_tokens of a refinement")
    ap.add_argument("--rounds", type=int, default=2, help="BFS requests per client")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: never leave the server behind
    proc, url = start_server(args)
    try:
        asyncio.run(bench(args, url))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


if __name__ == "__main__":
    main()
