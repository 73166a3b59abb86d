"""`spar report`: a run as one self-contained HTML page (summary, plots, tree viewer, pair browser).

    spar report runs/tiny                      # -> runs/tiny/report.html
    spar report runs/tiny --out /tmp/tiny.html

The page needs no server and no network: open it from disk in any browser. `spar run` writes
runs/<name>/report.html after each iteration by itself; this verb rebuilds it, e.g. for a run still going
or one that stopped half-way (the page names what is missing).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory spar run wrote (runs/<name>)")
    p.add_argument("--out", default=None, help="the HTML file to write (default: RUN_DIR/report.html)")
    p.add_argument("--max-mb", type=float, default=None,
                   help="cut long texts in the page if it would exceed this size in MB (default 24)")


def run(args: argparse.Namespace) -> int:
    from spar.errors import UserError
    from spar.report import write_page
    from spar.report.build import gather

    if args.max_mb is not None and not args.max_mb > 0:
        raise UserError(f"--max-mb {args.max_mb}: must be a positive size in MB, e.g. --max-mb 24")
    run = gather(args.run_dir)
    path = write_page(run, args.out, int(args.max_mb * 1_000_000) if args.max_mb else None)
    notes = run.notes
    size = path.stat().st_size
    print(f"report: {path} ({size / 1e6:.2f} MB)" + (f"; {len(notes)} part(s) missing or unfinished, "
                                                      f"named at the top of the page" if notes else ""))
    return 0
