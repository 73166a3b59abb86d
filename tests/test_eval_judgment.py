"""`spar eval judgment`: pairwise (LLMBar format, both orders) and pointwise agreement."""

import json

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.eval.judgment import PairRow, evaluate_pairs, load_pairs, pointwise_agreement
from spar.judge import LLMJudge
from spar.parsing import parse_preference
from spar.records import Instruction, RecordError


def responder(chat, i):
    text = chat[0]["content"]
    if "Which response follows" in text:
        return "Better: B"
    return "Verdict: Yes" if "GOOD" in text else "Verdict: No"


def test_pairwise_both_orders_and_tie_break():
    rows = [PairRow("q1", "GOOD", "bad", 1), PairRow("q2", "bad", "GOOD", 2), PairRow("q3", "x", "y", 1)]
    b = ScriptedBackend(respond=responder)
    m = evaluate_pairs(rows, LLMJudge(b, n=1), b)
    # rows 1-2 decided by values in both orders; row 3 ties: "B" wins each time -> the second shown
    assert m["accuracy"] == pytest.approx((2 + 2 + 1) / 6)
    assert m["positional_agreement"] == pytest.approx(2 / 3)
    assert 0 < m["f1"] <= 1


def test_pointwise_agreement_counts_no_as_positive():
    inst = Instruction("a", "No commas.", [{"id": "punctuation:no_comma", "kwargs": {}}])
    items = [(inst, "a, GOOD"), (inst, "a b"), (inst, "c, d"), (Instruction("s", "soft"), "x")]
    m = pointwise_agreement(items, LLMJudge(ScriptedBackend(respond=responder), n=1))
    # truth: no, yes, no (soft one skipped); judge: yes, no, no
    assert m["n"] == 3 and m["accuracy"] == pytest.approx(1 / 3)
    assert m["precision_no"] == pytest.approx(1 / 2) and m["recall_no"] == pytest.approx(1 / 2)


def test_preference_parser():
    assert parse_preference("**Better:** B") == 2
    assert parse_preference("Better: A\nBetter: B") == 2
    assert parse_preference("I like both") is None


def test_bad_llmbar_row_is_named(tmp_path):
    p = tmp_path / "bar.jsonl"
    p.write_text(json.dumps({"input": "q", "output_1": "a", "output_2": "b", "label": 3}) + "\n")
    with pytest.raises(RecordError, match=r"bar.jsonl:1: label must be 1 or 2"):
        load_pairs(p)


def test_cli_pairwise_on_tiny_model(tmp_path):
    p = tmp_path / "bar.jsonl"
    p.write_text(json.dumps({"input": "Say hi.", "output_1": "hi", "output_2": "bye", "label": 1}) + "\n")
    out = tmp_path / "m.json"
    assert main(["eval", "judgment", "--data", str(p), "--model", "tiny-random", "--n", "2", "--max-new-tokens", "5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_pairs"] == 1
