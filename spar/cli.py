"""The `spar` command line.

    spar run --config configs/cpu-smollm2.yaml     # the whole self-play loop
    spar generate --model smollm2-135m-instruct --in chats.jsonl --out out.jsonl
    spar <verb> --help

Each verb lives in `spar/commands/<verb>.py`, which defines
`add_arguments(parser)` and `run(args) -> int`; it is imported only when
that verb runs, so `spar --help` is instant.

Exit status: 0 done, 2 a user error (bad input or setting, reported in one
line: spar.errors.UserError or a missing/unreadable path), 1 a bug in spar
(reported with its traceback), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM, e.g. `kill` or a job
scheduler's time limit). Both unwind like an exception, so every engine is closed on the way out: a vLLM
engine's processes would otherwise outlive the command and keep the cores busy.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import signal
import sys
import traceback

from spar import __version__
from spar.errors import UserError

# Exceptions that mean the user's input or setting is wrong: one line, exit status 2. Anything else
# escaping a verb is a bug in spar: its traceback is shown, exit status 1.
USER_ERRORS = (UserError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)

# verb -> one-line help. The module spar.commands.<verb> implements it.
VERBS = {
    "run": "run the self-play loop (sample, judge, search, build pairs, train, evaluate) from a config",
    "generate": "generate answers to chats or instructions with any backend and decoding strategy",
    "judge": "judge responses with the LLM, verifier or hybrid judge",
    "search": "grow refinement trees (BFS/DFS) from negative responses",
    "eval": "evaluate: IFEval, judgment accuracy",
    "data": "instruction synthesis and statistics",
    "serve": "serve an OpenAI-compatible API whose answers come from tree-search decoding",
    "report": "write a run's self-contained HTML report: summary, plots, tree viewer, pair browser",
    "compare": "runs side by side from their manifests: held-out scores, pairs, search success, edit distance",
    "experiment": "rerun one of the paper's experiments: scaling (decoding scaling, Fig. 5), refinement-accuracy "
                  "(Tables 3/10)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spar", description="SPaR: self-play with tree-search refinement.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, help_text in VERBS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    return parser


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread so `finally` blocks (closing engines) run."""


def _raise_terminated(signum, frame):
    raise Terminated(signal.Signals(signum).name)


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
    previous = _on_termination(_raise_terminated)
    try:
        return int(module.run(args) or 0)
    except USER_ERRORS as e:
        # the user's input or setting: the message names the value, where it came from and the fix
        print(f"spar {verb}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spar {verb}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"spar {verb}: terminated ({e}); rerun the same command to resume", file=sys.stderr)
        return 143
    except Exception as e:  # noqa: BLE001 - anything else is ours: show all of it
        traceback.print_exc()
        print(f"spar {verb}: this is a bug in spar, not in your input ({type(e).__name__}). Please report it to the "
              f"spar-llm maintainers as an issue, with the command you ran, the traceback above and the versions: "
              f"spar {__version__}, Python {platform.python_version()}, {platform.platform()}", file=sys.stderr)
        return 1
    finally:
        _on_termination(previous)


def _on_termination(handler) -> dict:
    """Install `handler` (a callable, or a dict of signal -> handler as returned before) for SIGTERM and SIGHUP
    and return the handlers it replaced; only the main thread may (spar.cli.main called from a thread: no-op)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    handlers = handler if isinstance(handler, dict) else {sig: handler for sig in (signal.SIGTERM, signal.SIGHUP)}
    return {sig: old for sig, h in handlers.items() if h is not None
            for old in [signal.signal(sig, h)] if old is not None}


def _one_line(e: BaseException) -> str:
    return " ".join(line.strip() for line in str(e).splitlines()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
