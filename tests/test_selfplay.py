"""The self-play loop end to end on the tiny model: files, manifest, training, resume after SIGKILL, bad input."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spar.cli import main
from spar.config import ConfigError, load_config
from spar.selfplay.pairs import edit_distance

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"


def run_cli(out_dir, *extra):
    return main(["run", "--config", str(LOOP), f"out_dir={out_dir}", f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}", *extra])


def test_loop_end_to_end(tmp_path, capsys):
    assert run_cli(tmp_path) == 0
    root = tmp_path / "loop"
    manifest = json.loads((root / "manifest.json").read_text())
    stages = ["sample", "judge", "negatives", "search", "pairs", "rft", "train_actor", "train_refiner", "eval"]
    for t in ("0", "1"):
        assert all(manifest["iterations"][t][s]["status"] == "done" for s in stages)
        assert manifest["iterations"][t]["train_actor"]["trained"] and manifest["iterations"][t]["train_refiner"]["trained"]
    it0 = root / "iter_0"
    assert (it0 / "actor" / "model.safetensors").exists() and (it0 / "refiner" / "model.safetensors").exists()
    pairs = [json.loads(x) for x in (it0 / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen"] == '"A quoted answer."' and p["source"] == "refinement" for p in pairs)
    trl = [json.loads(x) for x in (it0 / "pairs_trl.jsonl").read_text().splitlines()]
    assert trl[0]["chosen"][0]["role"] == "assistant"
    assert (root / "config.yaml").read_text().startswith("name: loop")
    # iteration 1 starts from iteration 0's checkpoints
    assert json.loads((root / "iter_1" / "responses.jsonl").read_text().splitlines()[0])["model"].endswith("iter_0/actor")
    out = capsys.readouterr().out
    assert "heldout prompt" in out
    assert run_cli(tmp_path) == 0
    assert "already complete" in capsys.readouterr().err


def digest(root: Path) -> dict:
    """Every record file and checkpoint of a run, by content (the run's own path masked: records name checkpoints)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".jsonl", ".safetensors"):
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes().replace(str(root).encode(), b"RUN")).hexdigest()
    return out


def spar_run(out_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "spar.cli", "run", "--config", str(LOOP), f"out_dir={out_dir}",
           f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONHASHSEED="0"))


def kill_when(proc, condition, timeout=120):
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
    """Killed mid-judging, mid-training and mid-search, the rerun ends with files equal to an uninterrupted run.

    Compared: every JSONL record file and both models' weights. Not compared: timings in manifest.json.
    """
    ref = tmp_path / "ref"
    assert spar_run(ref).wait() == 0
    want = digest(ref / "loop")
    run = tmp_path / "killed"
    root = run / "loop"
    def finished(t, stage):
        try:
            return json.loads((root / "manifest.json").read_text())["iterations"][t][stage]["status"] == "done"
        except (OSError, ValueError, KeyError):
            return False

    points = [
        lambda: (root / "iter_0" / "judgments.jsonl.partial").exists(),  # mid-judging
        lambda: finished("0", "rft"),  # at or inside DPO training
        lambda: finished("1", "judge"),  # at or inside the tree search of iteration 1
    ]
    killed = 0
    for condition in points:
        killed += kill_when(spar_run(run), condition)
    assert killed >= 2  # the kills really interrupted the run
    assert spar_run(run).wait() == 0
    got = digest(root)
    assert got == want
    for line in (root / "iter_0" / "responses.jsonl").read_text().splitlines():
        assert line.strip()
    ids = [(json.loads(x)["instruction_id"], json.loads(x)["index"]) for x in (root / "iter_0" / "responses.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids))  # no record lost or duplicated


def test_config_errors_before_any_compute(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key search.brnch; did you mean search.branch"):
        load_config(LOOP, ["search.brnch=2"])
    with pytest.raises(ConfigError, match=r"loop.yaml: sample.k='five' should be an integer"):
        load_config(LOOP, ["sample.k=five"])
    with pytest.raises(ConfigError, match=r"judge.kind='majority'"):
        load_config(None, ["judge.kind=majority"])
    cfg = load_config(LOOP, ["train.dpo.lora={r: 4}"])
    assert cfg.train.dpo.lora.r == 4 and cfg.train.dpo.lora.alpha == 32


def test_malformed_instruction_line_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x", "constraints": [{"id": "punctuation:no_commas", "kwargs": {}}]}\n')
    assert main(["run", "--config", str(LOOP), f"out_dir={tmp_path}", f"data.source={bad}"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1" in err and "punctuation:no_comma" in err
    assert not (tmp_path / "loop" / "iter_0").exists()


def test_changed_config_on_resume_is_refused(tmp_path, capsys):
    assert run_cli(tmp_path, "iterations=1") == 0
    assert run_cli(tmp_path, "iterations=1", "sample.k=3") == 2
    assert "different config" in capsys.readouterr().err


def test_edit_distance_counts_tokens():
    assert edit_distance("a b c", "a b c") == 0
    assert edit_distance("a b c", "a x c") == 1
    assert edit_distance("a, b", "a b") == 1
    assert edit_distance("", "one two") == 2


@pytest.mark.slow
def test_cpu_preset_on_the_embedded_model_small(tmp_path):
    """The README's main job, shrunk: one iteration of configs/cpu-smollm2.yaml on 4 instructions."""
    assert main(["run", "--config", str(REPO / "configs" / "cpu-smollm2.yaml"), f"out_dir={tmp_path}",
                 "data.n=60", "data.per_iteration=4", "eval.heldout=4", "sample.max_new_tokens=48",
                 "search.max_depth=1", "search.max_new_tokens=96", "eval.max_new_tokens=48"]) == 0
    manifest = json.loads((tmp_path / "cpu-smollm2" / "manifest.json").read_text())
    assert manifest["iterations"]["0"]["eval"]["status"] == "done"
