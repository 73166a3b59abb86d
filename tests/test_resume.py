"""Resume: SIGKILL `spar run` at several points, rerun the same command, get the files of an uninterrupted run.

The run is tests/assets/loop.yaml: two iterations on the tiny model with both
trainers, a scripted refiner so trees succeed. Each kill is a real SIGKILL of
a subprocess (no cleanup handlers run), at a point read off the run directory.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"

# Files compared byte for byte (the run's own out_dir masked) - all but:
#   manifest.json       holds wall-clock timings, which differ between any two runs;
#   train_metrics.json  the same (seconds of training).
# Everything else, records and model weights included, must be identical.
NOT_COMPARED = {"manifest.json", "train_metrics.json"}


def digest(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in NOT_COMPARED:
            # records name checkpoints, config.yaml names out_dir: mask the run's own location
            data = p.read_bytes().replace(str(root.parent).encode(), b"OUT")
            out[str(p.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def spar_run(out_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "spar.cli", "run", "--config", str(LOOP), f"out_dir={out_dir}",
           f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONHASHSEED="0"))


def kill_when(proc: subprocess.Popen, condition, timeout: float = 180) -> bool:
    """SIGKILL `proc` as soon as `condition()` holds; False if the run ended first."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def test_sigkill_anywhere_then_rerun_gives_the_same_files(tmp_path):
    """Killed mid-judging, in training and in iteration 1's search, the rerun ends with an uninterrupted run's files."""
    ref = tmp_path / "ref"
    assert spar_run(ref).wait() == 0
    want = digest(ref / "loop")
    assert any(k.endswith("model.safetensors") for k in want) and "iter_1/trees.jsonl" in want

    root = tmp_path / "killed" / "loop"

    def finished(t: str, stage: str) -> bool:
        try:
            return json.loads((root / "manifest.json").read_text())["iterations"][t][stage]["status"] == "done"
        except (OSError, ValueError, KeyError):
            return False

    points = [
        lambda: (root / "iter_0" / "judgments.jsonl.chunks").exists(),  # a judge chunk written, others not
        lambda: finished("0", "rft"),  # at or inside DPO training
        lambda: finished("1", "judge"),  # at or inside iteration 1's tree search
    ]
    killed = [kill_when(spar_run(tmp_path / "killed"), condition) for condition in points]
    assert sum(killed) >= 2, killed  # the kills really interrupted the run
    assert spar_run(tmp_path / "killed").wait() == 0
    got = digest(root)
    assert got.keys() == want.keys()  # no stray partial files, no missing output
    assert got == want
    for t in ("iter_0", "iter_1"):  # no record lost or duplicated (implied above; said plainly here)
        for name, key in (("responses.jsonl", ("instruction_id", "index")), ("judgments.jsonl", ("response_id",)),
                          ("trees.jsonl", ("instruction_id",))):
            rows = [json.loads(x) for x in (root / t / name).read_text().splitlines()]
            ids = [tuple(r[k] for k in key) for r in rows]
            assert len(ids) == len(set(ids)) and len(rows) == len((ref / "loop" / t / name).read_text().splitlines())
