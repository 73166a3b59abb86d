"""`spar experiment refinement-accuracy` (paper Tables 3/10): exact shares and confusion on hand-written trees,
the judge model per iteration from the manifest, the CLI on a scripted and on the tiny model, and bad input."""

import hashlib
import json

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.config import JudgeConfig
from spar.experiments.refinement_accuracy import measure
from spar.judge import judge_from_config
from spar.records import Instruction, Tree, write_jsonl

NO_COMMA = [{"id": "punctuation:no_comma", "kwargs": {}}]
LOWER = [{"id": "change_case:english_lowercase", "kwargs": {}}]
INSTRUCTIONS = [Instruction("a", "List two fruits without commas.", NO_COMMA),
                Instruction("b", "Say hello in lowercase.", LOWER),
                Instruction("c", "List two birds without commas.", NO_COMMA),
                Instruction("d", "Write a kind note.", []),  # nothing checkable: the judge alone
                Instruction("e", "Write a short poem.", []),
                Instruction("f", "Greet a friend in lowercase.", LOWER)]


def tree(inst: str, best: str, response: str, success: bool) -> Tree:
    """A root negative and three refinements; `best` ("0" = the root: no refinement parsed) holds `response`."""
    nodes = [{"id": "0", "parent": None, "depth": 0, "response": "root, wrong", "value": 0.0}]
    nodes += [{"id": f"0.{k}", "parent": "0", "depth": 1, "value": 0.0, "failed": best == "0",
               "response": response if f"0.{k}" == best else f"other {k}"} for k in range(3)]
    return Tree(instruction_id=inst, root="0", nodes=nodes, success=success, best=best)


TREES = [tree("a", "0.1", "apple and pear", True),   # verifier pass, judge yes
         tree("b", "0.0", "Hello", False),           # verifier fail (capital), judge yes
         tree("c", "0.2", "crow, owl", False),       # verifier fail, judge no (a comma)
         tree("d", "0", "", False),                  # no refinement parsed: not counted
         tree("e", "0.0", "roses bloom", True),      # not checkable, judge yes
         tree("f", "0.1", "hello ??? my dear friend, it is good to see you again today", True)]  # pass; abstains


def judge_reply(chat, i):
    """Yes unless the judged response has a comma; unreadable for '???'."""
    response = chat[-1]["content"].split("[Response]\n", 1)[1].split("\n\n", 1)[0]
    if "???" in response:
        return "I am not sure."
    return "Verdict: no" if "," in response else "Verdict: yes"


def test_shares_and_confusion_are_exact():
    backend = ScriptedBackend(respond=judge_reply)
    judge = judge_from_config(JudgeConfig(kind="llm", n=3, resample=1), backend, seed=0)
    s, rows = measure(0, TREES, {i.id: i for i in INSTRUCTIONS}, judge, "r0")
    assert (s.trees, s.refinements, s.checkable, s.judge_abstained) == (6, 5, 4, 1)
    assert [(r.instruction_id, r.node, r.judge_label, r.verifier_passed) for r in rows] == [
        ("a", "0.1", "yes", True), ("b", "0.0", "yes", False), ("c", "0.2", "no", False), ("e", "0.0", "yes", None),
        ("f", "0.1", "abstain", True)]
    assert s.search_success == 3 / 5 and s.judge_accepted == 3 / 5 and s.verifier_passed == 2 / 4
    assert s.confusion == {"judge_yes_verifier_pass": 1, "judge_yes_verifier_fail": 1,
                           "judge_not_yes_verifier_pass": 1, "judge_not_yes_verifier_fail": 1}
    assert s.agreement == 2 / 4
    assert rows[1].verifier_failed == ["change_case:english_lowercase"]
    # one batched call for the five refinements, one more round for the undecided '???' only
    assert [len(chats) for chats, _ in backend.calls] == [5, 1]


def make_run(root, refiner_backend="scripted", refiner="r0", options="{reply: 'Verdict: yes'}", iterations=2):
    """A finished run as the loop leaves it (only what the experiment reads): config, manifest, trees."""
    root.mkdir()
    (root / "config.yaml").write_text(
        f"name: {root.name}\nout_dir: {root.parent}\nseed: 3\n"
        f"refiner:\n  name: {refiner}\n  backend: {refiner_backend}\n  options: {options}\n"
        "judge:\n  kind: hybrid\n  n: 1\n  max_new_tokens: 4\n  resample: 0\n")
    write_jsonl(root / "instructions.jsonl", INSTRUCTIONS)
    stages = {str(t): {"search": {"status": "done"}, "train_refiner": {"status": "done", "model": f"ckpt-{t}"}}
              for t in range(iterations)}
    (root / "manifest.json").write_text(json.dumps({"iterations": stages}))
    for t in range(iterations):
        write_jsonl(root / f"iter_{t}" / "trees.jsonl", TREES[: 3 + t])
    return root


def digests(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_cli_judges_each_iteration_with_the_refiner_that_searched(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    before = digests(run)
    assert main(["experiment", "refinement-accuracy", str(run)]) == 0
    out = run / "experiments" / "refinement_accuracy"
    result = json.loads((out / "refinement_accuracy.json").read_text())
    it = {s["iteration"]: s for s in result["iterations"]}
    # iteration 0 searched with the run's refiner; iteration 1 with the checkpoint iteration 0 trained
    assert it[0]["judge_model"] == "r0" and it[1]["judge_model"] == "ckpt-0"
    # the scripted judge says yes to everything: trees a, b, c (and d, no refinement, in iteration 1)
    assert (it[0]["trees"], it[0]["refinements"], it[0]["judge_accepted"], it[0]["checkable"]) == (3, 3, 1.0, 3)
    assert (it[1]["trees"], it[1]["refinements"]) == (4, 3)
    assert it[0]["verifier_passed"] == 1 / 3 and it[0]["confusion"]["judge_yes_verifier_fail"] == 2
    assert result["judge"]["kind"] == "llm" and result["judge"]["n"] == 1 and result["settings"]["seed"] == 3
    assert len(result["rows"]) == 6
    assert (out / "refinement_accuracy.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    printed = capsys.readouterr().out
    assert "ckpt-0" in printed and (out / "table.txt").read_text().strip() in printed
    assert all(digests(run)[p] == d for p, d in before.items())  # the run's files are untouched


def test_one_iteration_another_judge_model_and_judge_flags(tmp_path):
    run = make_run(tmp_path / "run")
    out = tmp_path / "elsewhere"
    assert main(["experiment", "refinement-accuracy", str(run), "--iteration", "1", "--judge-model", "strong",
                 "--judge-n", "2", "--out", str(out)]) == 0
    result = json.loads((out / "refinement_accuracy.json").read_text())
    assert [s["iteration"] for s in result["iterations"]] == [1]
    assert result["iterations"][0]["judge_model"] == "strong" and result["judge"]["n"] == 2
    assert not (run / "experiments").exists()


def test_tiny_model_judge(tmp_path):
    run = make_run(tmp_path / "run", refiner_backend="hf", refiner="tiny-random", options="{}", iterations=1)
    assert main(["experiment", "refinement-accuracy", str(run), "--judge-max-new-tokens", "3"]) == 0
    result = json.loads((run / "experiments" / "refinement_accuracy" / "refinement_accuracy.json").read_text())
    (s,) = result["iterations"]
    assert (s["trees"], s["refinements"], s["checkable"]) == (3, 3, 3) and s["judge_model"] == "tiny-random"
    assert s["verifier_passed"] == 1 / 3 and sum(s["confusion"].values()) == 3  # whatever the random judge says
    assert s["judge_abstained"] <= 3 and {r["judge_label"] for r in result["rows"]} <= {"yes", "no", "abstain"}


@pytest.mark.parametrize("setup, flags, message", [
    ("no-trees", [], "iter_<t>/trees.jsonl: no such file"),
    ("ok", ["--iteration", "5"], "iter_5/trees.jsonl: no such file; iteration 5 has no finished search stage"),
    ("ok", ["--iteration", "x"], "'--iteration x': must be an integer"),
    ("no-config", [], "config.yaml: no such file"),
    ("missing", [], "no such directory"),
    ("ok", ["--judge", "verifier"], "the verifier is already the other column"),
    ("ok", ["--judge-n", "0"], "judge.n"),
    ("ok", ["--backend", "tpu"], "'--backend tpu'"),
    ("ok", ["--out", "CONFIG"], "config.yaml: is a file; give a directory"),
])
def test_bad_input_is_one_line_and_changes_nothing(setup, flags, message, tmp_path, capsys):
    run = tmp_path / "run"
    if setup != "missing":
        make_run(run)
    if setup == "no-trees":
        for t in (0, 1):
            (run / f"iter_{t}" / "trees.jsonl").unlink()
    if setup == "no-config":
        (run / "config.yaml").unlink()
    flags = [str(run / "config.yaml") if f == "CONFIG" else f for f in flags]
    before = digests(tmp_path)
    assert main(["experiment", "refinement-accuracy", str(run), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spar experiment: error:") and message in err[0], err
    assert digests(tmp_path) == before
