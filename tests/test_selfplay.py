"""The self-play loop end to end on the tiny model: files, manifest, training, a finished rerun, bad input.

Resume after SIGKILL is in test_resume.py; the data steps without a model in test_selfplay_data.py.
"""

import hashlib
import json
from pathlib import Path

import pytest

from spar.cli import main
from spar.config import dump_config, load_config
from spar.errors import UserError
from spar.records import Pair

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"


def run_cli(out_dir, *extra):
    data = REPO / "tests" / "assets" / "quote_instructions.jsonl"
    return main(["run", "--config", str(LOOP), f"out_dir={out_dir}", f"data.source={data}", *extra])


def test_loop_end_to_end(tmp_path, capsys):
    assert run_cli(tmp_path) == 0
    root = tmp_path / "loop"
    manifest = json.loads((root / "manifest.json").read_text())
    stages = ["sample", "judge", "negatives", "search", "pairs", "rft", "train_actor", "train_refiner", "eval"]
    for t in ("0", "1"):
        assert all(manifest["iterations"][t][s]["status"] == "done" for s in stages)
        done = manifest["iterations"][t]
        assert done["train_actor"]["trained"] and done["train_refiner"]["trained"]
        for stage in ("sample", "judge", "negatives", "search", "pairs", "rft"):  # counts, checksums, timings
            entry = manifest["iterations"][t][stage]
            data = (root / entry["file"]).read_bytes()
            assert entry["count"] == data.count(b"\n") and entry["sha256"] == hashlib.sha256(data).hexdigest()
            assert entry["seconds"] >= 0
        actor = manifest["iterations"][t]["train_actor"]
        weights = (root / f"iter_{t}" / "actor" / "model.safetensors").read_bytes()
        assert actor["sha256"] == hashlib.sha256(weights).hexdigest()
    assert not [p for p in root.rglob("*") if p.name.endswith((".partial", ".chunks", ".tmp"))]
    it0 = root / "iter_0"
    assert (it0 / "actor" / "model.safetensors").exists() and (it0 / "refiner" / "model.safetensors").exists()
    pairs = [json.loads(x) for x in (it0 / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen"] == '"A quoted answer."' and p["source"] == "refinement" for p in pairs)
    trained = [Pair(**json.loads(x)) for x in (it0 / "pairs_train.jsonl").read_text().splitlines()]
    assert trained and trained[0].to_trl()["chosen"][0]["role"] == "assistant"  # what the DPO trainer is given
    assert (root / "config.yaml").read_text().startswith("name: loop")
    # iteration 1 starts from iteration 0's checkpoints
    first = json.loads((root / "iter_1" / "responses.jsonl").read_text().splitlines()[0])
    assert first["model"].endswith("iter_0/actor")
    assert manifest["iterations"]["1"]["search"]["count"] == manifest["iterations"]["1"]["negatives"]["count"]
    out = capsys.readouterr().out
    table = out.split("SPaR run")[1].splitlines()
    assert "heldout prompt" in table[1] and table[2].split()[0] == "base"
    assert [r.split()[0] for r in table[3:5]] == ["0", "1"]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["iterations"][0]["refinement_pairs"] == manifest["iterations"]["0"]["pairs"]["refinement_pairs"] > 0
    assert run_cli(tmp_path) == 0
    assert "already complete" in capsys.readouterr().err


def test_malformed_instruction_line_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x", "constraints": [{"id": "punctuation:no_commas", "kwargs": {}}]}\n')
    assert main(["run", "--config", str(LOOP), f"out_dir={tmp_path}", f"data.source={bad}"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1" in err and "punctuation:no_comma" in err
    assert not (tmp_path / "loop" / "iter_0").exists()


def test_bad_inputs_are_refused_before_any_compute(tmp_path, capsys):
    good = REPO / "tests/assets/quote_instructions.jsonl"
    dup = tmp_path / "dup.jsonl"
    rows = good.read_text().splitlines()
    dup.write_text(rows[0] + "\n\n" + rows[1] + "\n" + rows[0] + "\n")
    bad_eval = tmp_path / "ifeval.jsonl"
    bad_eval.write_text('{"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": []}\n')
    cases = [
        ([f"data.source={dup}"], "dup.jsonl:4: id 'q0' repeats line 1"),
        ([f"data.source={tmp_path / 'none.jsonl'}"],
         "data.source=" + str(tmp_path / "none.jsonl") + ": file not found"),
        ([f"data.source={good}", "--eval-data", str(bad_eval)], "ifeval.jsonl:1: instruction_id_list and kwargs"),
        ([f"data.source={good}", "train.dpo.accelerate_config=nope.yaml"],
         "train.dpo.accelerate_config=nope.yaml: file not found"),
    ]
    for extra, message in cases:
        assert main(["run", "--config", str(LOOP), f"out_dir={tmp_path}", *extra]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "loop" / "iter_0").exists() and not (tmp_path / "loop" / "eval_base").exists()


def test_changed_config_on_resume_is_refused(tmp_path, capsys):
    """A rerun must use the run's own config: other settings would silently mix two experiments."""
    from spar.selfplay.loop import Loop

    cfg = load_config(LOOP, [f"out_dir={tmp_path}", f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}"])
    Loop(cfg)._write_config({})  # what the first run writes once every input is checked
    assert (tmp_path / "loop" / "config.yaml").read_text() == dump_config(cfg)
    assert run_cli(tmp_path, "sample.k=3") == 2
    err = capsys.readouterr().err
    assert "different config" in err and "sample.k: 2 -> 3" in err
    assert not (tmp_path / "loop" / "iter_0").exists()  # refused before any compute


@pytest.mark.slow
def test_cpu_preset_on_the_embedded_model_small(tmp_path):
    """The README's main job, shrunk: one iteration of configs/cpu-smollm2.yaml on 4 instructions."""
    assert main(["run", "--config", str(REPO / "configs" / "cpu-smollm2.yaml"), f"out_dir={tmp_path}",
                 "data.n=60", "data.per_iteration=4", "eval.heldout=4", "sample.max_new_tokens=48",
                 "search.max_depth=1", "search.max_new_tokens=96", "eval.max_new_tokens=48"]) == 0
    manifest = json.loads((tmp_path / "cpu-smollm2" / "manifest.json").read_text())
    assert manifest["iterations"]["0"]["eval"]["status"] == "done"


def test_model_name_typo_is_refused_before_anything_is_written(tmp_path, capsys):
    """A typo in a model name used to surface only when the model loaded, after config.yaml was written,
    so the corrected command was then refused as a different config."""
    assert run_cli(tmp_path, "actor.name=tiny-randon") == 2
    err = capsys.readouterr().err
    assert "actor.name='tiny-randon': no such model" in err and "did you mean tiny-random?" in err
    assert not (tmp_path / "loop").exists() or not any((tmp_path / "loop").iterdir())


def test_model_name_typos_behind_auto_and_the_soft_judge_are_refused_early(tmp_path, capsys):
    """`backend: auto` (the CPU presets) skipped the early model-name check, and the soft judge's model was only
    loaded at the first evaluation, after the base model's answers had been computed."""
    assert run_cli(tmp_path, "actor.backend=auto", "actor.name=tiny-randon") == 2
    assert "actor.name='tiny-randon': no such model" in capsys.readouterr().err
    assert not (tmp_path / "loop").exists() or not any((tmp_path / "loop").iterdir())
    from spar.config import load_config
    from spar.selfplay.loop import Loop

    cfg = load_config(None, [f"out_dir={tmp_path}", "refiner.backend=auto", "eval.soft_judge=true",
                             "eval.soft_judge_model=tiny-randon"])
    with pytest.raises(UserError, match="eval.soft_judge_model='tiny-randon': no such model"):
        Loop(cfg)._check_inputs()


def test_model_names_that_may_exist_are_accepted(tmp_path):
    from spar.models import check_model_name

    (tmp_path / "m").mkdir()
    for name in ("tiny-random", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path / "m")):
        check_model_name(name, "actor.name")
    for name in ("tiny-randon", "a/b/c", "./missing", "no such"):
        with pytest.raises(ValueError, match="no such model"):
            check_model_name(name, "actor.name")
