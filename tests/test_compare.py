"""`spar compare RUN...`: two scripted runs side by side (issue 12 item 5), and the ablation configs load."""

import json
import re
from pathlib import Path

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.config import load_config
from spar.selfplay.loop import Loop
from tests.test_loop_scripted import actor_reply, refiner_reply

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"


def _scripted(tmp_path, monkeypatch, name, *overrides):
    backends = {"actor": ScriptedBackend(respond=actor_reply, name="actor"),
                "refiner": ScriptedBackend(respond=refiner_reply, name="refiner")}
    monkeypatch.setattr(Loop, "backend", lambda self, role, model: backends[role])
    data = REPO / "tests" / "assets" / "quote_instructions.jsonl"
    cfg = load_config(LOOP, [f"out_dir={tmp_path}", f"name={name}", f"data.source={data}", "iterations=1",
                             "judge.kind=llm", "judge.n=3", "search.prefill=true", "search.branch=2",
                             "search.select=1", "search.max_depth=2", "search.max_refinements=4",
                             "train.actor=false", "train.refiner=false", *overrides])
    Loop(cfg).run()
    return tmp_path / name


def test_compare_two_scripted_runs(tmp_path, monkeypatch, capsys):
    spar_run = _scripted(tmp_path, monkeypatch, "spar")
    sampled = _scripted(tmp_path, monkeypatch, "sampled", "pairs.train_on=sampled", "search.strategy=dfs")
    assert main(["compare", str(spar_run), str(sampled)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in lines)}
    assert rows["run"] == ["spar", "sampled"]
    assert rows["pairs trained on"] == ["refinement", "sampled"]
    assert rows["refinement pairs @ iter 0"] == ["4", "4"] and rows["sampled pairs @ iter 0"] == ["3", "3"]
    assert rows["search success % @ iter 0"] == ["50.0", "50.0"]
    assert rows["held-out prompt @ base"] == ["50.0", "50.0"] and rows["held-out prompt @ iter 0"] == ["50.0", "50.0"]
    assert "seen kinds, new wording @ base" in rows and "truncated @ iter 0" in rows and "wall time (min)" in rows
    # paired on the same held-out prompts: the scripted actor answers alike before and after
    assert rows["held-out prompt @ iter 0 vs base"] == ["+0 -0 p=1.00", "+0 -0 p=1.00"]
    assert rows["held-out prompt, last vs spar's last"] == ["-", "+0 -0 p=1.00"]
    m = json.loads((spar_run / "manifest.json").read_text())["iterations"]["0"]["pairs"]
    assert rows["edit distance refined @ iter 0"][0] == f"{m['refinement_edit_distance']:.2f}"
    assert main(["compare", str(spar_run), str(sampled), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == ["spar", "sampled"] and data[1]["search"].startswith("dfs")


def test_compare_refuses_a_folder_that_is_no_run(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


@pytest.mark.parametrize("name, changed", [
    ("cpu-quality", {}), ("abl-sampled-pairs", {"pairs.train_on": "sampled"}),
    ("abl-single-chain", {"search.branch": 1, "search.select": 1, "search.max_depth": 9}),
    ("abl-one-iteration", {"iterations": 1, "data.per_iteration": 96}),
])
def test_campaign_configs_load_with_matched_budgets(name, changed):
    """An ablation is its base (cpu-quality.yaml) with a few keys changed; everything else stays the same."""
    from spar.config import flat_settings

    path = REPO / "configs" / f"{name}.yaml"
    assert path.read_text().startswith(f"# spar run --config configs/{name}.yaml")
    cfg = load_config(path)
    base = flat_settings(load_config(REPO / "configs" / "cpu-quality.yaml"))
    mine = flat_settings(cfg)
    assert cfg.name == name and cfg.bootstrap.enabled
    differ = {k for k in base if base[k] != mine[k]} - {"name"}
    assert differ == set(changed), differ
    assert mine["search.max_refinements"] == 9  # the tree's budget (branch 3 x depth 2 = 3 + 6), the chain's too
    assert all(mine[k] == v for k, v in changed.items())
    if name == "cpu-quality":
        assert cfg.iterations == 3 and cfg.actor.name == "smollm2-135m-instruct"


def test_base_key_merges_sections_and_names_a_missing_base(tmp_path):
    (tmp_path / "b.yaml").write_text("name: b\nsearch: {branch: 2, max_depth: 4}\n")
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\nsearch: {branch: 1}\n")
    cfg = load_config(tmp_path / "a.yaml", ["search.select=1"])
    assert (cfg.name, cfg.search.branch, cfg.search.max_depth, cfg.search.select) == ("a", 1, 4, 1)
    (tmp_path / "c.yaml").write_text("base: nowhere.yaml\n")
    from spar.errors import UserError

    with pytest.raises(UserError, match=r"c.yaml:1: base='nowhere.yaml': not a config file"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: d.yaml\n")
    with pytest.raises(UserError, match="leads back"):
        load_config(tmp_path / "d.yaml")


def test_max_train_caps_the_pairs_the_actor_trains_on(tmp_path, monkeypatch):
    """Matched budgets: pairs.max_train=2 trains on a seeded sample of 2 of the 4 refinement pairs."""
    root = _scripted(tmp_path, monkeypatch, "capped", "train.actor=true", "pairs.max_train=2")
    manifest = json.loads((root / "manifest.json").read_text())["iterations"]["0"]
    assert manifest["pairs"]["refinement_pairs"] == 4 and manifest["train_actor"]["pairs"] == 2
    assert len((root / "iter_0" / "pairs_train.jsonl").read_text().splitlines()) == 2


def test_sign_test_counts_paired_flips_and_gives_the_exact_p_value():
    from spar.commands.compare import sign_test

    before = {"a": False, "b": False, "c": True, "d": True, "e": False, "x": True}
    after = {"a": True, "b": True, "c": True, "d": False, "e": False, "y": False}
    assert sign_test(before, after) == {"n": 5, "wins": 2, "losses": 1, "p": 1.0}  # 2 * (1 + 3) / 8, capped
    eight = {str(i): False for i in range(8)}
    assert sign_test(eight, dict.fromkeys(eight, True))["p"] == 2 / 256
    assert sign_test({"a": True}, {"b": True}) is None
    assert sign_test({"a": True}, {"a": True}) == {"n": 1, "wins": 0, "losses": 0, "p": 1.0}
