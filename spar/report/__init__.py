"""`spar report`: a run directory as one self-contained HTML page.

    from spar.report import write_report
    write_report("runs/tiny")                  # -> runs/tiny/report.html

build.py gathers what the run wrote (tolerating half-finished and damaged runs), plots.py draws the plots
with matplotlib, diff.py makes the word diffs, html.py writes the page, whose viewer is report.js.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from spar.errors import UserError


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 max_bytes: int | None = None) -> Path:
    """Write the report of `run_dir` to `out` (default `run_dir/report.html`), atomically; return its path.

    A file already at `out` is replaced only if it is a spar report: any other file is refused (UserError),
    so a mistyped --out never overwrites a run's records.
    """
    from spar.report.build import gather

    return write_page(gather(run_dir), out, max_bytes)


def write_page(run, out: str | os.PathLike | None = None, max_bytes: int | None = None) -> Path:
    """`write_report` for a run already gathered (spar.report.build.RunData)."""
    from spar.report.html import MARKER, MAX_BYTES, render

    path = Path(out) if out is not None else run.root / "report.html"
    if path.is_dir():
        raise UserError(f"--out {path}: is a directory; give a file name such as {path / 'report.html'}")
    if path.exists():
        with open(path, "rb") as f:
            head = f.read(200)
        if MARKER.encode() not in head:
            raise UserError(f"--out {path}: exists and is not a spar report; refusing to overwrite it "
                            f"(give a new file name, e.g. {run.root / 'report.html'})")
    page = render(run, max_bytes or MAX_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


def update_run_report(run_dir: str | os.PathLike) -> Path | None:
    """For the loop, after each iteration: write `run_dir/report.html`, or warn and go on.

    A report is a view of the run, never part of it: whatever goes wrong here is printed as one warning
    and the run continues.
    """
    try:
        return write_report(run_dir)
    except Exception as e:  # noqa: BLE001 - see the docstring
        print(f"warning: could not write the report of {run_dir} ({type(e).__name__}: {e}); "
              f"the run goes on; try `spar report {run_dir}` later", file=sys.stderr)
        return None


__all__ = ["write_report", "write_page", "update_run_report"]
