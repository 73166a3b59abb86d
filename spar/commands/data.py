"""`spar data synth|evolve|stats|contamination`: make and inspect instruction files.

    spar data synth --n 10000 --seed 0 --out instructions.jsonl [--check-leaks ifeval.jsonl]
    spar data evolve --in seeds.jsonl --out evolved.jsonl --backend openai --model M
    spar data stats instructions.jsonl
    spar data contamination --in instructions.jsonl --against ifeval.jsonl [--n 8]
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
    s.add_argument("--check-leaks", default=None,
                   help="benchmark JSONL (a `prompt` per line) the instructions must not copy: refused above "
                        "--max-contamination, or on a near-duplicate prompt")
    s.add_argument("--max-contamination", type=float, default=0.02,
                   help="largest share of instructions allowed to share a --contamination-n word run with it")
    s.add_argument("--contamination-n", type=int, default=8, help="run length in words")
    e = sub.add_parser("evolve", help="LLM evolution of seed instructions (the paper's method)")
    e.add_argument("--in", dest="inp", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--backend", default="openai", choices=["auto", "hf", "vllm", "openai"])
    e.add_argument("--base-url", action="append", default=None)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--retries", type=int, default=2)
    e.add_argument("--chunk", type=int, default=64)
    e.add_argument("--max-new-tokens", type=int, default=256)
    t = sub.add_parser("stats", help="counts per constraint kind and taxonomy class, prompt lengths")
    t.add_argument("file")
    t.add_argument("--json", action="store_true")
    c = sub.add_parser("contamination", help="share of instructions sharing an n-word run with a benchmark's prompts")
    c.add_argument("--in", dest="inp", required=True, help="JSONL with a `prompt` per line (Instruction records)")
    c.add_argument("--against", required=True, help="benchmark JSONL with a `prompt` per line (IFEval format)")
    c.add_argument("--n", type=int, default=8, help="run length in words (8: the usual contamination threshold)")
    c.add_argument("--examples", type=int, default=5, help="worst examples shown (longest shared run first)")
    c.add_argument("--max-share", type=float, default=None, help="exit with an error above this share")
    c.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    return {"synth": _synth, "evolve": _evolve, "stats": _stats, "contamination": _contamination}[args.action](args)


def refuse_overwrite(out: str, flag: str, inputs: dict[str, str | None]) -> None:
    """A UserError when output `out` (given as `flag`) is one of the `inputs` (flag -> path): it would be lost."""
    from spar.records import refuse_overwrite as refuse

    refuse(out, flag, inputs)


def _check_share(value: float, flag: str) -> None:
    if not 0 <= value <= 1:
        raise UserError(f"{flag} {value}: must be a share between 0 and 1 (0.02 = 2%)")


def _synth(args) -> int:
    from spar.data.contamination import refuse_contamination
    from spar.data.synth import leak_check, synthesize
    from spar.records import write_jsonl

    t = time.perf_counter()
    refuse_overwrite(args.out, "--out", {"--check-leaks": args.check_leaks})
    _check_share(args.max_contamination, "--max-contamination")
    if args.contamination_n < 1:
        raise UserError(f"--contamination-n {args.contamination_n}: must be at least 1 (8 is usual)")
    if args.n < 1:
        raise UserError(f"--n {args.n}: must be at least 1")
    if not 0 <= args.heldout < 1:
        raise UserError(f"--heldout {args.heldout}: must be a share in [0, 1) (0.1 = 10% held out)")
    instructions = synthesize(args.n, args.seed, args.heldout)
    if args.check_leaks:
        report = refuse_contamination([(i.id, i.prompt) for i in instructions], args.check_leaks,
                                      args.contamination_n, args.max_contamination, "the synthesized instructions",
                                      "reword the phrasings (spar/data/phrasings.py) or seed tasks that copy it")
        hits = leak_check(instructions, args.check_leaks)
        if hits:
            raise UserError(f"{len(hits)} synthesized prompts nearly duplicate benchmark prompts, e.g. {hits[0]}; "
                            "change the seed tasks")
        print(report.summary(0))
    write_jsonl(args.out, instructions)
    print(f"wrote {len(instructions)} instructions to {args.out} in {time.perf_counter() - t:.1f}s")
    return 0


def _evolve(args) -> int:
    refuse_overwrite(args.out, "--out", {"--in": args.inp})  # evolved records are appended to --out
    for flag, value, low in (("--chunk", args.chunk, 1), ("--retries", args.retries, 0),
                             ("--max-new-tokens", args.max_new_tokens, 1)):
        if value < low:
            raise UserError(f"command line '{flag} {value}': must be >= {low}")
    if args.base_url and args.backend != "openai":
        raise UserError(f"--base-url: an openai backend setting, but --backend is {args.backend}; "
                        f"add --backend openai, or drop --base-url")
    refuse_overwrite(str(Path(args.out).with_name(Path(args.out).name + ".dropped")), "--out (its .dropped list)",
                     {"--in": args.inp})
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
    with (JsonlAppender(out) as w, open(done_file, "a") as dropped,
          tqdm(total=len(todo), desc="evolve", file=sys.stderr) as bar):
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
    from spar.records import read_instructions

    s = stats(read_instructions(args.file))  # every record and constraint checked, file:line; empty refused
    print(json.dumps(s, indent=2) if args.json else format_stats(s))
    return 0


def _contamination(args) -> int:
    from spar.data.contamination import contamination, load_prompts

    if args.n < 1:
        raise UserError(f"--n {args.n}: must be at least 1 (8 is the usual contamination threshold)")
    if args.max_share is not None:
        _check_share(args.max_share, "--max-share")
    if args.examples < 0:
        raise UserError(f"--examples {args.examples}: must be >= 0 (examples shown)")
    report = contamination(load_prompts(args.inp, "--in"), load_prompts(args.against, "--against"), args.n)
    if args.json:
        print(json.dumps({"n": report.n, "total": report.total, "contaminated": len(report.hits),
                          "share": report.share,
                          "examples": [{"id": h.id, "benchmark_id": h.benchmark_id, "words": h.length, "run": h.run}
                                       for h in report.hits[: args.examples]]}, indent=2))
    else:
        print(report.summary(args.examples))
    if args.max_share is not None and report.share > args.max_share:
        h = report.hits[0]
        raise UserError(f"{report.share:.2%} of {args.inp} share a run of {args.n} words with {args.against}, above "
                        f"--max-share {args.max_share:.2%}; e.g. {h.id}: \"{h.run}\"")
    return 0
