"""`spar run --from RUN`: an ablation starts from another run's instructions, base evaluation and bootstrap.

The source run bootstraps for real (SFT of both roles on the tiny model); the fork must not sample, judge or
train any of that again, must start iteration 0 from its own copy of the bootstrap's checkpoints, and must refuse
a config whose earlier stages would differ.
"""

import json
from pathlib import Path

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.config import load_config
from spar.errors import UserError
from spar.selfplay.fork import differing_settings
from spar.selfplay.loop import Loop

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"
QUOTES = REPO / "tests" / "assets" / "quote_instructions.jsonl"
SHARED = [("base", "instructions"), ("base", "eval"), ("bootstrap", "data"), ("bootstrap", "train_actor"),
          ("bootstrap", "train_refiner"), ("bootstrap", "eval")]


def config(tmp_path, *overrides):
    return load_config(LOOP, [f"out_dir={tmp_path}", f"data.source={QUOTES}", "iterations=1", "judge.kind=llm",
                              "search.prefill=true", "search.max_refinements=2", "search.max_depth=1",
                              "bootstrap.enabled=true", "bootstrap.n=5", "bootstrap.train.epochs=1",
                              "bootstrap.train.lr=1.0e-3", *overrides])


def run(cfg, monkeypatch, fork_from=None):
    """Run the loop with scripted roles; returns the loop and every chat each role was sent."""
    actor = ScriptedBackend(respond=lambda chat, i: "A plain note.", name="actor")
    refiner = ScriptedBackend(respond=lambda chat, i: "Not quoted.\nVerdict: No", name="refiner")
    backends = {"actor": actor, "refiner": refiner}
    monkeypatch.setattr(Loop, "backend", lambda self, role, name: backends[role])
    loop = Loop(cfg, fork_from=fork_from)
    loop.run()
    return loop, {role: [chat for chats, _ in b.calls for chat in chats] for role, b in backends.items()}


def manifest(root):
    return json.loads((root / "manifest.json").read_text())


def test_an_ablation_starts_from_the_runs_bootstrap_without_recomputing_it(tmp_path, monkeypatch):
    _, source_calls = run(config(tmp_path), monkeypatch)
    source = tmp_path / "loop"
    loop, calls = run(config(tmp_path, "name=abl", "pairs.train_on=sampled"), monkeypatch, fork_from=source)
    fork = tmp_path / "abl"
    ours, theirs = manifest(fork), manifest(source)
    assert ours["forked_from"]["run"] == str(source)
    for t, name in SHARED:
        entry, original = dict(ours["iterations"][t][name]), theirs["iterations"][t][name]
        assert entry.pop("copied_from") == str(source)
        if "model" in original and original.get("trained"):  # the fork's own copy of the checkpoint
            assert entry.pop("model") == str(fork / "bootstrap" / name.removeprefix("train_"))
            original = {k: v for k, v in original.items() if k != "model"}
        assert entry == original
    assert (fork / "instructions.jsonl").read_bytes() == (source / "instructions.jsonl").read_bytes()
    # iteration 0 starts from the copies, which hold the bootstrap's weights
    actor, refiner = loop.models_for(0)
    assert actor == str(fork / "bootstrap" / "actor") and refiner == str(fork / "bootstrap" / "refiner")
    assert (Path(actor) / "config.json").is_file() and ours["iterations"]["0"]["eval"]["status"] == "done"
    # nothing before iteration 0 ran again: the fork's actor got exactly the source's requests from iteration 0 on;
    # the source's before them (base evaluation: 2 held-out prompts, bootstrap: 5 sampled, its evaluation: 2) not
    skipped = len(source_calls["actor"]) - len(calls["actor"])
    assert skipped >= 2 + 5 + 2 and calls["actor"] == source_calls["actor"][skipped:]
    # spar compare counts the copied stages in the fork's wall time and shows them apart
    from spar.commands.compare import load_run

    spent = sum(theirs["iterations"][t][name].get("seconds") or 0 for t, name in SHARED)
    assert load_run(fork)["copied_seconds"] == pytest.approx(spent, abs=0.1) and load_run(source)["copied_seconds"] == 0
    # a rerun with --from resumes: nothing changes
    before = (fork / "manifest.json").read_text()
    run(config(tmp_path, "name=abl", "pairs.train_on=sampled"), monkeypatch, fork_from=source)
    assert (fork / "manifest.json").read_text() == before


def test_a_fork_is_refused_when_the_stages_it_copies_would_differ(tmp_path, monkeypatch):
    source = tmp_path / "loop"
    with pytest.raises(UserError, match=r"not a run directory"):
        Loop(config(tmp_path, "name=abl"), fork_from=source).run()
    run(config(tmp_path), monkeypatch)
    for overrides, match in [(["sample.k=3"], r"sample\.k: 2 there, 3 here"),
                             (["bootstrap.n=4"], r"bootstrap\.n: 5 there, 4 here"),
                             (["search.prefill=false"], r"search\.prefill: True there, False here"),
                             (["eval.heldout=1"], r"eval\.heldout: 2 there, 1 here")]:
        with pytest.raises(UserError, match=match):
            Loop(config(tmp_path, "name=abl", *overrides), fork_from=source).run()
    assert not (tmp_path / "abl").exists()  # refused before anything was written, not even an empty directory
    with pytest.raises(UserError, match=r"is this run itself"):
        Loop(config(tmp_path), fork_from=source).run()
    # a run with stages of its own is not overwritten by a fork
    with pytest.raises(UserError, match=r"already has stages of its own"):
        other = config(tmp_path, "name=other")
        run(other, monkeypatch)
        Loop(other, fork_from=source).run()
    assert not (tmp_path / "abl").exists() and (tmp_path / "other" / "manifest.json").exists()


def test_a_source_that_has_not_finished_its_bootstrap_is_refused(tmp_path, monkeypatch):
    run(config(tmp_path), monkeypatch)
    source = tmp_path / "loop"
    m = manifest(source)
    del m["iterations"]["bootstrap"]["train_refiner"], m["iterations"]["bootstrap"]["eval"]
    (source / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=r"has not finished bootstrap/train_refiner, bootstrap/eval"):
        Loop(config(tmp_path, "name=abl"), fork_from=source).run()


def test_only_settings_of_the_iterations_may_differ():
    a = load_config(REPO / "configs" / "cpu-quality.yaml")
    for name in ("abl-sampled-pairs", "abl-single-chain", "abl-one-iteration"):  # the shipped ablations fork
        assert differing_settings(a, load_config(REPO / "configs" / f"{name}.yaml")) == {}
    assert set(differing_settings(a, load_config(REPO / "configs" / "cpu-quality.yaml", [
        "seed=1", "judge.n=5", "search.strategy=dfs", "train.dpo.lr=1e-6", "actor.batch_size=8"]))) == {
        "seed", "judge.n"}
