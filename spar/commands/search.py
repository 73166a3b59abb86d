"""`spar search`: grow refinement trees from negative responses.

    spar search --in negatives.jsonl --instructions instructions.jsonl --out trees.jsonl \\
        --strategy bfs --model smollm2-135m-instruct --judge hybrid

Input lines are Negative records (`instruction_id`, `response_id`, `text`,
`critique`, `votes`, `value`), as the self-play loop writes them to
negatives.jsonl. The trees of a chunk (--chunk negatives, default the
loop's chunk) grow together and are appended when the chunk finishes,
through the loop's own search stage (selfplay/collect.search_negatives);
a rerun skips instructions whose tree is already in the output, and a run
resumed after a crash writes what an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spar.config import JudgeConfig, ModelConfig, RunConfig, SearchConfig, add_flags, flags_config
from spar.commands.generate import add_backend_flags, backend_options
from spar.records import Negative, iter_jsonl


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="JSONL of Negative records")
    p.add_argument("--instructions", required=True, help="JSONL of the Instruction records")
    p.add_argument("--out", required=True, help="JSONL of Tree records (appended; a rerun resumes)")
    # the config's search.*, judge.* and refiner.* keys, with their defaults: --judge is judge.kind, --n its votes,
    # the judge's other settings are --judge-<key> (--temperature and --max-new-tokens are the refiner's)
    add_flags(p, SearchConfig, "search.")
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge", "n": "--n"}, prefix="--judge-")
    add_flags(p, ModelConfig, "refiner.", rename={"name": "--model"}, exclude=("options",))
    add_flags(p, RunConfig, "", only=("chunk",))  # negatives per batched, resumable chunk
    add_backend_flags(p)


def settings(args: argparse.Namespace) -> tuple[SearchConfig, JudgeConfig, ModelConfig]:
    """The search, judge and refiner settings the flags ask for (config defaults where not given)."""
    return (flags_config(args, SearchConfig, "search."), flags_config(args, JudgeConfig, "judge."),
            flags_config(args, ModelConfig, "refiner."))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spar.commands.generate import check_context
    from spar.commands.judge import inputs_to_do, open_backend
    from spar.judge import judge_from_config
    from spar.prompts import refine_chat
    from spar.selfplay.collect import search_negatives

    cfg, judge_cfg, model_cfg = settings(args)  # bad flags stop here, before any file is read
    chunk = flags_config(args, RunConfig, "").chunk
    options = backend_options(args, model_cfg)
    instructions, negatives, where, todo = inputs_to_do(args, Negative, lambda n: n.instruction_id,
                                                        lambda t: t["instruction_id"], "Negative records")
    out = Path(args.out)
    if not todo:
        print(f"all {len(negatives)} trees already in {out}; nothing to do")
        return 0
    backend = open_backend(model_cfg, options)
    check_context(backend, [refine_chat(instructions[n.instruction_id].prompt, n.text, n.critique) for n in todo],
                  cfg.max_new_tokens, [where[n.instruction_id] for n in todo])
    judge = judge_from_config(judge_cfg, backend, cfg.seed)
    # the loop's search stage (iteration seed 0): chunk c searches with seed search.seed + c, so a rerun after a
    # crash grows the unfinished chunks' trees exactly as an uninterrupted run would
    with tqdm(total=len(negatives), desc=f"search ({cfg.strategy})", unit="tree", file=sys.stderr) as bar:
        search_negatives(negatives, instructions, backend, judge, cfg, 0, out, chunk, bar.update, append=True)
    new = {n.instruction_id for n in todo}
    succeeded = sum(t["success"] for t in iter_jsonl(out) if t["instruction_id"] in new)
    print(f"{succeeded}/{len(todo)} trees found a refinement judged right; trees in {out}")
    return 0
