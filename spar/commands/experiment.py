"""`spar experiment NAME`: rerun one of the paper's experiments on your model.

    spar experiment scaling --config configs/experiments/scaling-cpu.yaml
    spar experiment scaling --model tiny-random --judge verifier --n 4 --budgets 1,2,4
    spar experiment scaling --help
    spar experiment refinement-accuracy runs/cpu-smollm2 --iteration 0

Each experiment lives in `spar/experiments/<name>.py` (its flags and its run; a - in NAME is a _ there); it
writes a JSON result, a printed table and a plot into --out.
"""

from __future__ import annotations

import argparse
import importlib

from spar.experiments import EXPERIMENTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name, help_text in EXPERIMENTS.items():
        module = importlib.import_module(_module(name))
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(_module(args.experiment)).run(args) or 0)


def _module(name: str) -> str:
    return "spar.experiments." + name.replace("-", "_")  # refinement-accuracy -> refinement_accuracy
