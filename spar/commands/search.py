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

from spar.config import JudgeConfig, ModelConfig, SearchConfig, add_flags, flags_config
from spar.commands.generate import add_backend_flags, backend_options
from spar.records import JsonlAppender, Negative, iter_lines, keys_in, read_instructions, refuse_overwrite


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="JSONL of Negative records")
    p.add_argument("--instructions", required=True, help="JSONL of the Instruction records")
    p.add_argument("--out", required=True, help="JSONL of Tree records (appended; a rerun resumes)")
    # the config's search.*, judge.* and refiner.* keys, with their defaults: --judge is judge.kind, --n its votes,
    # the judge's other settings are --judge-<key> (--temperature and --max-new-tokens are the refiner's)
    add_flags(p, SearchConfig, "search.")
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge", "n": "--n"}, prefix="--judge-")
    add_flags(p, ModelConfig, "refiner.", rename={"name": "--model"}, exclude=("options",))
    add_backend_flags(p)


def settings(args: argparse.Namespace) -> tuple[SearchConfig, JudgeConfig, ModelConfig]:
    """The search, judge and refiner settings the flags ask for (config defaults where not given)."""
    return (flags_config(args, SearchConfig, "search."), flags_config(args, JudgeConfig, "judge."),
            flags_config(args, ModelConfig, "refiner."))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spar.commands.generate import check_context
    from spar.commands.judge import open_backend, read_answers
    from spar.judge import judge_from_config
    from spar.search.engine import Root, search_trees

    cfg, judge_cfg, model_cfg = settings(args)  # bad flags stop here, before any file is read
    options = backend_options(args, model_cfg)
    refuse_overwrite(args.out, "--out", {"--in": args.inp, "--instructions": args.instructions})
    instructions = {i.id: i for i in read_instructions(args.instructions)}
    negatives = read_answers(args.inp, Negative, instructions, args.instructions, "Negative records")
    wheres = [w for w, _ in iter_lines(args.inp)]
    out = Path(args.out)
    done = keys_in(out, "instruction_id")
    todo = [n for n in negatives if n.instruction_id not in done]
    if not todo:
        print(f"all {len(negatives)} trees already in {out}; nothing to do")
        return 0
    backend = open_backend(model_cfg, options)
    from spar.prompts import refine_chat

    todo_wheres = [w for n, w in zip(negatives, wheres) if n.instruction_id not in done]
    check_context(backend, [refine_chat(instructions[n.instruction_id].prompt, n.text, n.critique) for n in todo],
                  cfg.max_new_tokens, todo_wheres)
    judge = judge_from_config(judge_cfg, backend, cfg.seed)
    roots = [Root(instructions[n.instruction_id], n.text, n.critique, n.votes, n.value) for n in todo]
    stats = {"ok": 0, "done": 0}
    with (JsonlAppender(out, lazy=True) as w,
          tqdm(total=len(roots), desc=f"search ({cfg.strategy})", unit="tree", file=sys.stderr) as bar):
        def progress(tree, generated):
            stats["done"] += 1
            stats["ok"] += tree.success
            bar.set_postfix(succeeded=stats["ok"], generations=generated)
            bar.update(1)

        search_trees(roots, backend, judge, cfg, on_done=w.write, progress=progress)
    print(f"{stats['ok']}/{stats['done']} trees found a refinement judged right; trees in {out}")
    return 0
