"""The whole loop with scripted actor and refiner (real training on the tiny model).

Every branch of an iteration is exercised with outcomes known in advance:
some trees succeed and some fail, some instructions have a sampled response
judged right (so "sampled" pairs exist), the judge's votes are never
unanimous (so the refiner gets judge-stage and tree-node critiques), and
refinements are prefilled with the start marker.

Scripted behaviour, by instruction (tests/assets/quote_instructions.jsonl;
every one asks for the answer wrapped in double quotes):
  actor:   "rain", "cat", "sleep", "snow": sample 0 quoted (right), others plain;
           every other instruction: always plain (wrong).
  refiner: refinement of "rain", "cat", "sleep", "fruit": quoted (the tree succeeds);
           all others stay plain (the tree fails after its whole budget).
  judge:   3 votes; a quoted answer gets Yes, Yes, No (value 2/3), a plain one No, No, Yes (1/3).
"""

import json
from pathlib import Path

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.config import load_config
from spar.parsing import REFINED_END, REFINED_START
from spar.selfplay.loop import Loop

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"
ANSWERED = ("rain", "cat", "sleep", "snow")
REFINED = ("rain", "cat", "sleep", "fruit")
ACTOR_PARAMS: list = []  # the SamplingParams of every call the last scripted run made to the actor


def _topic(prompt: str, words) -> bool:
    return any(w in prompt for w in words)


def actor_reply(chat, i):
    prompt = chat[-1]["content"]
    return '"A quoted note."' if i == 0 and _topic(prompt, ANSWERED) else "A plain note."


def refiner_reply(chat, i):
    if chat[-1]["role"] == "assistant":  # a prefilled refinement: continue after the start marker
        instruction = chat[0]["content"].split("[Instruction]")[1].split("[Response]")[0]
        body = '"A quoted answer."' if _topic(instruction, REFINED) else "Still a plain answer."
        return f"{body}\n{REFINED_END}"
    response = chat[0]["content"].split("[Response]")[1].strip().split("\n")[0]
    quoted = response.startswith('"') and response.endswith('"')
    if quoted:
        return "The whole answer is wrapped in quotes.\nVerdict: Yes" if i < 2 else "Quotes missing.\nVerdict: No"
    return "The answer is not wrapped in double quotes.\nVerdict: No" if i < 2 else "Fine.\nVerdict: Yes"


@pytest.fixture
def scripted_run(tmp_path, monkeypatch):
    backends = {"actor": ScriptedBackend(respond=actor_reply, name="actor"),
                "refiner": ScriptedBackend(respond=refiner_reply, name="refiner")}
    monkeypatch.setattr(Loop, "backend", lambda self, role, name: backends[role])
    cfg = load_config(LOOP, [f"out_dir={tmp_path}", f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}",
                             "iterations=1", "judge.kind=llm", "judge.n=3", "search.prefill=true",
                             "search.branch=2", "search.select=1", "search.max_depth=2", "search.max_refinements=4",
                             "sample.repetition_penalty=1.3", "eval.repetition_penalty=1.2"])
    summary = Loop(cfg).run()
    ACTOR_PARAMS[:] = [params for _, params in backends["actor"].calls]
    return tmp_path / "loop", summary


def _jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_every_branch_of_an_iteration(scripted_run):
    root, summary = scripted_run
    # the actor's sampling uses sample.repetition_penalty, its greedy evaluation answers eval.repetition_penalty
    used = {(p.temperature > 0, p.repetition_penalty) for p in ACTOR_PARAMS}
    assert used == {(True, 1.3), (False, 1.2)}
    it = root / "iter_0"
    manifest = json.loads((root / "manifest.json").read_text())["iterations"]["0"]

    # negatives: every training instruction has a plain (wrong) sample
    negatives = _jsonl(it / "negatives.jsonl")
    assert sorted(n["instruction_id"] for n in negatives) == [f"q{i}" for i in range(8)]
    assert all(n["text"] == "A plain note." for n in negatives)

    # search: trees of "rain", "cat", "sleep", "fruit" succeed at depth 1; the rest fail after 2 + 2 refinements
    trees = {t["instruction_id"]: t for t in _jsonl(it / "trees.jsonl")}
    assert {i for i, t in trees.items() if t["success"]} == {"q0", "q1", "q2", "q3"}
    for iid in ("q4", "q5", "q6", "q7"):
        tree = trees[iid]
        assert len(tree["nodes"]) == 5 and tree["calls"]["refine"] == 4
        assert all(abs(n["value"] - 1 / 3) < 1e-9 for n in tree["nodes"][1:])
    assert manifest["search"]["succeeded"] == 4 and manifest["search"]["count"] == 8

    # pairs: refinement pairs for the trees that succeeded, sampled pairs where a sample was judged right
    pairs = _jsonl(it / "pairs.jsonl")
    refined = {p["instruction_id"]: p for p in pairs if p["source"] == "refinement"}
    sampled = {p["instruction_id"]: p for p in pairs if p["source"] == "sampled"}
    assert set(refined) == {"q0", "q1", "q2", "q3"} and set(sampled) == {"q0", "q1", "q2"}
    assert all(p["chosen"] == '"A quoted answer."' and p["rejected"] == "A plain note." for p in refined.values())
    assert all(p["chosen"] == '"A quoted note."' for p in sampled.values())
    # the actor trains on refinement pairs only, the Pair records in pairs_train.jsonl (pairs_trl.jsonl, a TRL copy
    # that nothing read, is no longer written)
    assert _jsonl(it / "pairs_train.jsonl") == list(refined.values()) and not (it / "pairs_trl.jsonl").exists()

    # RFT: refinement chats (prefilled) and judge critiques from the tree and from the judge stage
    rft = _jsonl(it / "rft.jsonl")
    refine = [e for e in rft if e["kind"] == "refine"]
    judge = [e for e in rft if e["kind"] == "judge"]
    assert len(refine) == 4
    for e in refine:
        text = "".join(m["content"] for m in e["messages"][-2:])
        assert REFINED_START in text and '"A quoted answer."' in e["messages"][-1]["content"]
    assert {e["source"] for e in judge} >= {"tree-node", "judge-stage"}
    assert manifest["rft"]["refine"] == 4 and manifest["rft"]["judge"] == len(judge)

    # training ran on both models; evaluation scored the scripted actor's greedy answers exactly
    assert manifest["train_actor"]["trained"] and manifest["train_actor"]["pairs"] == 4
    assert manifest["train_refiner"]["trained"]
    assert manifest["eval"]["scores"]["heldout_n"] == 2
    assert manifest["eval"]["scores"]["heldout_prompt_level"] == 0.5  # "snow" is answered in quotes, "teacher" not
    assert summary["iterations"][0]["refinement_pairs"] == 4 and summary["iterations"][0]["sampled_pairs"] == 3
