"""`spar run`: the whole SPaR self-play loop from a config, resumable.

    spar run --config configs/cpu-smollm2.yaml [dotted.key=value ...] [--eval-data ifeval.jsonl]
    spar run --help-config      # every config key with its help text

Rerun the same command after a crash or a kill: finished stages are
skipped and a stage cut short resumes from its last whole chunk.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML preset (configs/*.yaml); defaults when absent")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. search.strategy=dfs iterations=1")
    p.add_argument("--eval-data", default=None, help="IFEval-format JSONL scored before and after (never trained on)")
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

    summary = Loop(cfg).run()
    print(format_summary(summary))
    print(json.dumps(summary))
    return 0
