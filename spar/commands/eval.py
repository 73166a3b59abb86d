"""`spar eval ifeval|followbench|judgment ...`: benchmarks, each defined next to its scorer.

The flags and the entry point of each benchmark live in its module under
spar/eval/ (`add_arguments(parser)` and `run(args) -> int`); those modules
import torch and backends only inside `run`.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "ifeval": ("spar.eval.ifeval", "IFEval: prompt/instruction-level accuracy, strict and loose"),
    "followbench": ("spar.eval.followbench", "FollowBench: HSR, SSR and CSL by level 1-5 (code checks, an LLM judge)"),
    "judgment": ("spar.eval.judgment", "the refiner as judge: LLMBar as the paper scores it (Acc./F1 per subset), "
                                       "pairwise, agreement with the verifier"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)


def run(args: argparse.Namespace) -> int:
    return args._run(args)
