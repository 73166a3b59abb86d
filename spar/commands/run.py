"""`spar run`: the whole SPaR self-play loop from a config, resumable.

    spar run --config configs/cpu-smollm2.yaml [dotted.key=value ...] [--eval-data ifeval.jsonl]
    spar run --help-config      # every config key with its help text
    spar run --config configs/abl-sampled-pairs.yaml --from runs/cpu-quality   # an ablation of a run

Rerun the same command after a crash or a kill: finished stages are
skipped and a stage cut short resumes from its last whole chunk. `--from`
copies the stages before iteration 0 of another run (spar/selfplay/fork.py).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML preset (configs/*.yaml); defaults when absent")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. search.strategy=dfs iterations=1")
    p.add_argument("--eval-data", default=None, help="IFEval-format JSONL scored before and after (never trained on)")
    p.add_argument("--from", dest="fork_from", default=None, metavar="RUN",
                   help="start from RUN's instructions, base evaluation and bootstrap (an ablation of RUN: only "
                        "settings of the iterations may differ); copied, not recomputed")
    p.add_argument("--help-config", action="store_true", help="list every config key and exit")


def run(args: argparse.Namespace) -> int:
    from spar.config import describe, load_config

    if args.help_config:
        print("\n".join(describe()))
        return 0
    overrides = list(args.overrides)
    if args.eval_data:
        overrides.append(f"eval.ifeval_data={args.eval_data}")
    cfg = load_config(args.config, overrides)  # every error here comes before any compute

    from spar.selfplay.loop import Loop, format_summary

    loop = Loop(cfg, fork_from=args.fork_from)
    summary = loop.run()
    print(format_summary(summary))
    print(json.dumps(summary))
    note = untrained_note(loop)
    if note:
        print(note, file=sys.stderr)
    return 0


def untrained_note(loop) -> str:
    """A plain sentence when the run trained nothing (no pairs, no RFT data, or training switched off), so a table
    of unchanged scores is not mistaken for a result; empty when something was trained."""
    rd, cfg = loop.rd, loop.cfg
    stages = [(t, role) for t in range(cfg.iterations) for role in ("train_actor", "train_refiner") if rd.done(t, role)]
    if not stages or any(rd.stage(t, role).get("trained") for t, role in stages):
        return ""
    iterations = sorted({t for t, _ in stages})
    pairs = sum(rd.stage(t, "pairs").get(f"{cfg.pairs.train_on}_pairs", 0) for t in iterations)
    examples = sum(rd.stage(t, "rft").get("count", 0) for t in iterations)
    why = ["train.actor=false" if not cfg.train.actor else f"{pairs} {cfg.pairs.train_on} pairs for DPO",
           "train.refiner=false" if not cfg.train.refiner else f"{examples} RFT examples"]
    return (f"note: this run trained nothing ({' and '.join(why)} over {len(iterations)} iteration(s)): "
            f"the models after each iteration are the models it started with. To train, the search must find "
            f"refinements (more instructions, data.n; a larger model; search.branch/max_depth) - see "
            f"{rd.root / 'manifest.json'} for the counts per stage")
