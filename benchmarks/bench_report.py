"""`spar report` on a large run: page size and time to open in headless Chromium.

    python benchmarks/bench_report.py [--trees 10000] [--iterations 1] [--run runs/cpu-smollm2 ...]

Writes a synthetic run directory shaped like the paper's BFS (spar/report/synthetic.py: branch 3, keep 2,
depth <= 3, 5 votes per node with critiques, about half the trees failing after all 15 refinements), builds
its report, and opens it from disk in Chromium (Debian's `chromium` + `chromium-driver`, through Selenium).
`--run` adds real run directories (e.g. the CPU preset's). Prints, per page:
  size / 25 MB                       target <= 1
  open time / 3 s                    target <= 1   (navigation start -> the page's script has read its data)
  trees tab / 3 s                    the first page of the last iteration's trees drawn after a click
and the time `spar report` took to build the page. One run on this shared machine: noisy, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from spar.report import write_report
from spar.report.synthetic import make_run

SIZE_TARGET, OPEN_TARGET = 25_000_000, 3.0


def open_times(page: Path) -> tuple[float, float]:
    """(seconds from navigation start until the page is ready, seconds for the Trees tab to draw)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                f"--user-data-dir={tempfile.mkdtemp(prefix='spar-bench-')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.get(page.resolve().as_uri())
        WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.body.dataset.ready"))
        # the page marks itself ready when its script has decoded the run's metadata and instructions
        ready = driver.execute_script("return performance.now()") / 1000
        load = driver.execute_script(
            "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd / 1000")
        start = time.perf_counter()
        driver.find_element(By.CSS_SELECTOR, '#tabs button[data-tab="trees"]').click()
        WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.body.dataset.treesReady"))
        trees = time.perf_counter() - start
        return max(ready, load), trees
    finally:
        driver.quit()


def measure(run_dir: Path, label: str) -> None:
    start = time.perf_counter()
    page = write_report(run_dir, Path(tempfile.mkdtemp(prefix="spar-report-")) / "report.html")
    build = time.perf_counter() - start
    size = page.stat().st_size
    opened, trees = open_times(page)
    print(f"{label}: {size / 1e6:.2f} MB (size / 25 MB = {size / SIZE_TARGET:.2f}), "
          f"opens in {opened:.2f} s (/ 3 s = {opened / OPEN_TARGET:.2f}), trees tab {trees:.2f} s "
          f"(/ 3 s = {trees / OPEN_TARGET:.2f}); built in {build:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=10_000, help="trees per iteration of the synthetic run")
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--run", nargs="*", default=[], help="real run directories to measure as well")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="spar-bench-run-") as tmp:
        start = time.perf_counter()
        run = make_run(Path(tmp) / "synthetic", trees=args.trees, iterations=args.iterations)
        raw = sum(f.stat().st_size for f in run.rglob("*.jsonl"))
        print(f"synthetic run: {args.iterations} x {args.trees} trees, {raw / 1e6:.0f} MB of JSONL "
              f"(written in {time.perf_counter() - start:.0f} s)")
        measure(run, f"synthetic {args.iterations * args.trees} trees")
    for r in args.run:
        measure(Path(r), r)


if __name__ == "__main__":
    main()
