"""`spar experiment NAME`: rerun one of the paper's experiments on your model.

    spar experiment scaling --config configs/experiments/scaling-cpu.yaml
    spar experiment scaling --model tiny-random --judge verifier --n 4 --budgets 1,2,4
    spar experiment scaling --help

Each experiment lives in `spar/experiments/<name>.py` (its flags and its run); it writes a JSON result,
a printed table and a plot into --out.
"""

from __future__ import annotations

import argparse
import importlib

from spar.experiments import EXPERIMENTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name, help_text in EXPERIMENTS.items():
        module = importlib.import_module(f"spar.experiments.{name}")
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(f"spar.experiments.{args.experiment}").run(args) or 0)
