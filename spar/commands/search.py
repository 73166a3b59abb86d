"""`spar search`: grow refinement trees from negative responses.

    spar search --in negatives.jsonl --instructions instructions.jsonl --out trees.jsonl \\
        --strategy bfs --model smollm2-135m-instruct --judge hybrid

Input lines are Negative records (`instruction_id`, `response_id`, `text`,
`critique`, `votes`, `value`), as the self-play loop writes them to
negatives.jsonl. Trees are appended as they finish; a rerun skips
instructions whose tree is already in the output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spar.records import Instruction, JsonlAppender, Negative, RecordError, keys_in, read_jsonl


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="JSONL of Negative records")
    p.add_argument("--instructions", required=True, help="JSONL of the Instruction records")
    p.add_argument("--out", required=True, help="JSONL of Tree records (appended; a rerun resumes)")
    p.add_argument("--strategy", default="bfs", choices=["bfs", "dfs"])
    p.add_argument("--branch", type=int, default=3)
    p.add_argument("--select", type=int, default=2)
    p.add_argument("--max-depth", type=int, default=3)
    p.add_argument("--gate", type=float, default=0.5)
    p.add_argument("--max-refinements", type=int, default=15)
    p.add_argument("--model", default="smollm2-135m-instruct", help="the refiner")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm", "openai"])
    p.add_argument("--judge", default="hybrid", choices=["llm", "verifier", "hybrid"])
    p.add_argument("--n", type=int, default=5, help="judge votes per refinement")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-new-tokens", type=int, default=384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prefill", action="store_true", help="start each refinement with the start marker (small models)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spar.backends import make_backend
    from spar.judge import make_judge
    from spar.search.engine import Root, search_trees
    from spar.search.tree import SearchConfig

    cfg = SearchConfig(strategy=args.strategy, branch=args.branch, select=args.select, max_depth=args.max_depth,
                       gate=args.gate, max_refinements=args.max_refinements, temperature=args.temperature,
                       max_new_tokens=args.max_new_tokens, seed=args.seed, prefill=args.prefill)
    instructions = {i.id: i for i in read_jsonl(args.instructions, Instruction)}
    negatives = read_jsonl(args.inp, Negative)
    for lineno, n in enumerate(negatives, start=1):
        if n.instruction_id not in instructions:
            raise RecordError(f"{args.inp}:{lineno}: instruction id {n.instruction_id!r} is not in {args.instructions}")
    out = Path(args.out)
    done = keys_in(out, "instruction_id")
    todo = [n for n in negatives if n.instruction_id not in done]
    if not todo:
        print(f"all {len(negatives)} trees already in {out}; nothing to do")
        return 0
    backend = make_backend(args.backend, args.model)
    judge = make_judge(args.judge, backend, **({} if args.judge == "verifier" else {"n": args.n}))
    roots = [Root(instructions[n.instruction_id], n.text, n.critique, n.votes, n.value) for n in todo]
    stats = {"ok": 0, "done": 0}
    with JsonlAppender(out) as w, tqdm(total=len(roots), desc=f"search ({cfg.strategy})", unit="tree", file=sys.stderr) as bar:
        def progress(tree, generated):
            stats["done"] += 1
            stats["ok"] += tree.success
            bar.set_postfix(succeeded=stats["ok"], generations=generated)
            bar.update(1)

        search_trees(roots, backend, judge, cfg, on_done=w.write, progress=progress)
    print(f"{stats['ok']}/{stats['done']} trees found a refinement judged right; trees in {out}")
    return 0
