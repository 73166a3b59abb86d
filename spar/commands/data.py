"""`spar data synth|evolve|stats`: make and inspect instruction files.

    spar data synth --n 10000 --seed 0 --out instructions.jsonl [--check-leaks ifeval.jsonl]
    spar data evolve --in seeds.jsonl --out evolved.jsonl --backend openai --model M
    spar data stats instructions.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from spar.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("synth", help="procedural instructions from the constraint taxonomy")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--heldout", type=float, default=0.1, help="fraction in the held-out split")
    s.add_argument("--out", required=True)
    s.add_argument("--check-leaks", default=None, help="IFEval-format file whose prompts must not leak in")
    e = sub.add_parser("evolve", help="LLM evolution of seed instructions (the paper's method)")
    e.add_argument("--in", dest="inp", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--backend", default="openai", choices=["hf", "vllm", "openai"])
    e.add_argument("--base-url", action="append", default=None)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--retries", type=int, default=2)
    e.add_argument("--chunk", type=int, default=64)
    e.add_argument("--max-new-tokens", type=int, default=256)
    t = sub.add_parser("stats", help="counts per constraint kind and taxonomy class, prompt lengths")
    t.add_argument("file")
    t.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    return {"synth": _synth, "evolve": _evolve, "stats": _stats}[args.action](args)


def _synth(args) -> int:
    from spar.data.synth import leak_check, synthesize
    from spar.records import write_jsonl

    t = time.perf_counter()
    instructions = synthesize(args.n, args.seed, args.heldout)
    if args.check_leaks:
        hits = leak_check(instructions, args.check_leaks)
        if hits:
            raise UserError(f"{len(hits)} synthesized prompts nearly duplicate benchmark prompts, e.g. {hits[0]}; "
                            "change the seed tasks")
    write_jsonl(args.out, instructions)
    print(f"wrote {len(instructions)} instructions to {args.out} in {time.perf_counter() - t:.1f}s")
    return 0


def _evolve(args) -> int:
    from tqdm import tqdm

    from spar.backends import make_backend
    from spar.data.evolve import evolve
    from spar.records import JsonlAppender, keys_in, read_instructions

    seeds = read_instructions(args.inp)  # evolved records are keyed by the seed's id
    out = Path(args.out)
    done = {k.removesuffix("-evo") for k in keys_in(out, "id")}
    done_file = out.with_name(out.name + ".dropped")
    if done_file.exists():
        done |= set(done_file.read_text().split())
    todo = [s for s in seeds if s.id not in done]
    options = {"base_urls": args.base_url} if args.backend == "openai" and args.base_url else {}
    backend = make_backend(args.backend, args.model, **options)
    kept = 0
    with JsonlAppender(out) as w, open(done_file, "a") as dropped, tqdm(total=len(todo), desc="evolve", file=sys.stderr) as bar:
        for start in range(0, len(todo), args.chunk):
            chunk = todo[start : start + args.chunk]
            for seed, evolved in zip(chunk, evolve(chunk, backend, args.seed, args.retries, args.max_new_tokens)):
                if evolved is None:
                    dropped.write(seed.id + "\n")
                else:
                    w.write(evolved)
                    kept += 1
            dropped.flush()
            bar.update(len(chunk))
    print(f"evolved {kept} of {len(todo)} seeds into {out} (dropped ids in {done_file})")
    return 0


def _stats(args) -> int:
    from spar.data.stats import format_stats, stats
    from spar.records import Instruction, read_jsonl

    s = stats(read_jsonl(args.file, Instruction))
    print(json.dumps(s, indent=2) if args.json else format_stats(s))
    return 0
