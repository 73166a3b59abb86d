"""The `spar` command line.

    spar run --config configs/cpu-smollm2.yaml     # the whole self-play loop
    spar generate --model smollm2-135m-instruct --in chats.jsonl --out out.jsonl
    spar <verb> --help

Each verb lives in `spar/commands/<verb>.py`, which defines
`add_arguments(parser)` and `run(args) -> int`; it is imported only when
that verb runs, so `spar --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> one-line help. The module spar.commands.<verb> implements it.
VERBS = {
    "run": "run the self-play loop (sample, judge, search, build pairs, train, evaluate) from a config",
    "generate": "generate answers to chats or instructions with any backend and decoding strategy",
    "judge": "judge responses with the LLM, verifier or hybrid judge",
    "search": "grow refinement trees (BFS/DFS) from negative responses",
    "eval": "evaluate: IFEval, judgment accuracy",
    "data": "instruction synthesis and statistics",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spar", description="SPaR: self-play with tree-search refinement.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, help_text in VERBS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in VERBS:
        build_parser().parse_args(argv or ["--help"])
        return 2
    verb, rest = argv[0], argv[1:]
    module = importlib.import_module(f"spar.commands.{verb}")
    parser = argparse.ArgumentParser(prog=f"spar {verb}", description=VERBS[verb])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as e:
        # Bad input: the message names the value, where it came from and the fix.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"spar {verb}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
