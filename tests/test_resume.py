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
#   train_metrics.json  the same (seconds of training);
#   report.html         a view of the manifest (its wall times included), rebuilt after each iteration.
# Everything else, records and model weights included, must be identical.
NOT_COMPARED = {"manifest.json", "train_metrics.json", "report.html"}


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


# ---- resuming under a changed config, and outputs edited between runs ---------------------------------------
# These drive the loop in-process with scripted actor and refiner and no training: a run takes about a second.

import pytest  # noqa: E402

from spar.config import load_config  # noqa: E402
from spar.errors import UserError  # noqa: E402
from spar.selfplay.loop import Loop  # noqa: E402

QUICK = ["iterations=1", "train.actor=false", "train.refiner=false", "actor.name=actor", "actor.backend=scripted",
         "actor.options={reply: a plain answer}", "eval.heldout=2"]


def quick_run(out_dir: Path, *extra: str) -> dict:
    cfg = load_config(LOOP, [f"out_dir={out_dir}", f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}",
                             *QUICK, *extra])
    return Loop(cfg).run()


def test_settings_that_cannot_change_results_may_change_on_resume_and_are_recorded(tmp_path):
    """Old code refused any difference from config.yaml, even a batch size or more iterations."""
    quick_run(tmp_path)
    root = tmp_path / "loop"
    before = (root / "iter_0" / "trees.jsonl").read_bytes()
    summary = quick_run(tmp_path, "refiner.batch_size=4", "eval.max_new_tokens=7", "iterations=2")
    assert [r["iteration"] for r in summary["iterations"]] == [0, 1]  # the extra iteration ran
    assert (root / "iter_0" / "trees.jsonl").read_bytes() == before  # finished work kept, not redone
    change = json.loads((root / "manifest.json").read_text())["config_changes"][-1]
    assert change["changes"] == {"eval.max_new_tokens": {"old": 10, "new": 7}, "iterations": {"old": 1, "new": 2},
                                 "refiner.batch_size": {"old": 16, "new": 4}}
    assert change["time"][:2] == "20"
    written = load_config(root / "config.yaml")
    assert (written.iterations, written.refiner.batch_size, written.eval.max_new_tokens) == (2, 4, 7)
    # the DPO effective batch (per device x accumulation x processes) may be re-split, not changed
    quick_run(tmp_path, "iterations=2", "train.dpo.batch_size=1", "train.dpo.grad_accum=2", "refiner.batch_size=4",
              "eval.max_new_tokens=7")
    with pytest.raises(UserError, match=r"train.dpo.batch_size: 1 -> 4"):
        quick_run(tmp_path, "iterations=2", "train.dpo.batch_size=4", "train.dpo.grad_accum=2")


def test_settings_that_change_results_are_refused_naming_each_key(tmp_path, capsys):
    """Old code said only "holds a different config", naming no key or value."""
    quick_run(tmp_path)
    root = tmp_path / "loop"
    files = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(UserError) as e:
        quick_run(tmp_path, "search.branch=3", "seed=1", "chunk=4", "refiner.batch_size=4")
    msg = str(e.value)
    assert msg.startswith(f"{root / 'config.yaml'}: this run was started with a different config, and these "
                          f"settings change its results (")
    assert "chunk: 3 -> 4; search.branch: 2 -> 3; seed: 0 -> 1" in msg and "batch_size" not in msg
    assert msg.endswith("resume it with the same config and overrides, or start a new run with name=<new name>")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == files  # nothing written by a refusal
    # through the command line: one line, exit 2
    assert main_run(tmp_path, "search.gate=0.7") == 2
    assert "search.gate: 0.5 -> 0.7" in capsys.readouterr().err


def test_fewer_iterations_than_the_run_began_are_refused(tmp_path):
    quick_run(tmp_path, "iterations=2")
    with pytest.raises(UserError, match=r"\(iterations: 2 -> 1\); resume it with the same config"):
        quick_run(tmp_path, "iterations=1")


def main_run(out_dir: Path, *extra: str) -> int:
    from spar.cli import main

    return main(["run", "--config", str(LOOP), f"out_dir={out_dir}",
                 f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}", *QUICK, *extra])


def test_config_is_written_only_after_every_check(tmp_path):
    """Old code wrote config.yaml before reading data.source: a refused input left a config behind, and the
    corrected rerun was then refused as "a different config"."""
    dup = tmp_path / "dup.jsonl"
    rows = (REPO / "tests/assets/quote_instructions.jsonl").read_text().splitlines()
    dup.write_text("\n".join(rows + rows[:1]) + "\n")
    cfg = load_config(LOOP, [f"out_dir={tmp_path}", f"data.source={dup}", *QUICK])
    with pytest.raises(ValueError, match="dup.jsonl:11: id 'q0' repeats line 1"):
        Loop(cfg).run()
    assert not (tmp_path / "loop" / "config.yaml").exists()
    quick_run(tmp_path)  # the corrected command runs
    assert load_config(tmp_path / "loop" / "config.yaml").data.source.endswith("quote_instructions.jsonl")


@pytest.mark.parametrize("name,stage", [("iter_0/judgments.jsonl", "judge"), ("iter_0/pairs.jsonl", "pairs"),
                                        ("instructions.jsonl", "instructions")])
def test_a_finished_stages_file_edited_afterwards_is_reported(tmp_path, name, stage):
    """Old code read an edited output on resume as if the run had written it (the checksums were never read)."""
    quick_run(tmp_path, "iterations=1")
    path = tmp_path / "loop" / name
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"', b"'", 2))
    with pytest.raises(UserError) as e:
        quick_run(tmp_path, "iterations=2")
    msg = str(e.value)
    assert msg.startswith(f"{path}: changed after the '{stage}' stage of ") and "restore the file" in msg
    assert f"delete it and the '{stage}' entry" in msg and "manifest.json" in msg
    assert not (tmp_path / "loop" / "iter_1").exists()  # refused before any compute
    path.unlink()
    with pytest.raises(UserError, match=f"{path}: missing, but the '{stage}' stage"):
        quick_run(tmp_path, "iterations=2")
    path.write_bytes(original)  # restored: the run goes on
    assert len(quick_run(tmp_path, "iterations=2")["iterations"]) == 2


def test_unreadable_old_config_is_named(tmp_path):
    quick_run(tmp_path)
    path = tmp_path / "loop" / "config.yaml"
    path.write_text(path.read_text() + "retired_setting: 3\n")
    with pytest.raises(UserError, match=r"config.yaml: the config this run was started with no longer loads .*"
                                          r"unknown config key retired_setting"):
        quick_run(tmp_path)
