"""`spar eval judgment`: pairwise (LLMBar format, both orders) and pointwise agreement."""

import json

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.eval.judgment import PairRow, evaluate_pairs, load_pairs, load_pointwise, pointwise_agreement
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
    assert main(["eval", "judgment", "--data", str(p), "--model", "tiny-random", "--n", "2", "--max-new-tokens", "5",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_pairs"] == 1


def mute(chat, i):
    """A judge that can answer neither prompt."""
    return "I am not sure."


def test_unreadable_pairwise_choice_is_an_abstention_not_the_first_output():
    """Old failure: an unreadable choice picked the output shown first, so a model that cannot answer scored
    accuracy 0.5 and positional agreement 0; abstentions went unreported."""
    rows = [PairRow("q1", "a", "b", 1), PairRow("q2", "c", "d", 2)]
    b = ScriptedBackend(respond=mute)
    m = evaluate_pairs(rows, LLMJudge(b, n=1, resample=0), b)
    assert m["abstained"] == 4 and m["judgments"] == 4
    assert m["accuracy"] == 0.0 and m["accuracy_answered"] is None
    assert m["positional_agreement"] is None and m["pairs_answered_both_orders"] == 0
    assert m["f1"] == 0.0
    assert len(b.calls) == 2 and len(b.calls[1][0]) == 4  # every tie-break asked in one batched call


def test_abstained_value_asks_for_a_preference_instead_of_counting_as_zero():
    """One output's pointwise votes unreadable (value None): the pairwise prompt decides, in both orders."""
    def respond(chat, i):
        text = chat[0]["content"]
        if "Which response follows" in text:
            return "Better: A" if text.index("GOOD") < text.index("[Response B]") else "Better: B"
        return "Verdict: No" if "bad" in text else "hmm"

    rows = [PairRow("q", "GOOD", "bad", 1)]
    b = ScriptedBackend(respond=respond)
    m = evaluate_pairs(rows, LLMJudge(b, n=1, resample=0), b)
    assert (m["accuracy"], m["positional_agreement"], m["abstained"]) == (1.0, 1.0, 0)


def test_one_order_unreadable_counts_half():
    answers = iter(["Better: A", "no idea"])
    b = ScriptedBackend(respond=lambda chat, i: next(answers) if "Which response" in chat[0]["content"] else "x")
    m = evaluate_pairs([PairRow("q", "a", "b", 1)], LLMJudge(b, n=1, resample=0), b)
    assert (m["accuracy"], m["accuracy_answered"], m["abstained"]) == (0.5, 1.0, 1)
    assert m["positional_agreement"] is None


LLMBAR = [{"input": "Say hi.", "output_1": "hi", "output_2": "bye", "label": 1},
          {"input": "Count to 2.", "output_1": "1 3", "output_2": "1 2", "label": 2}]


def test_llmbar_dataset_json_array(tmp_path):
    """Old failure: LLMBar's own dataset.json (one JSON array) was read as JSONL and refused."""
    p = tmp_path / "dataset.json"
    p.write_text(json.dumps(LLMBAR, indent=4))
    assert load_pairs(p) == [PairRow("Say hi.", "hi", "bye", 1), PairRow("Count to 2.", "1 3", "1 2", 2)]


@pytest.mark.parametrize("rows, match", [
    ([LLMBAR[0], {**LLMBAR[1], "label": "2"}], r"dataset.json\[1\]: label must be 1 or 2"),
    ([LLMBAR[0], {**LLMBAR[1], "label": True}], r"dataset.json\[1\]: label must be 1 or 2"),
    ([{"input": "q", "output_1": 3, "output_2": "b", "label": 1}], r"dataset.json\[0\]: an LLMBar row needs"),
    (["just text"], r"dataset.json\[0\]: an LLMBar row needs"),
    ([], r"dataset.json: no LLMBar rows"),
])
def test_bad_llmbar_array_item_is_named_by_index(tmp_path, rows, match):
    p = tmp_path / "dataset.json"
    p.write_text(json.dumps(rows))
    with pytest.raises(RecordError, match=match):
        load_pairs(p)


def test_broken_json_array_names_the_line(tmp_path):
    p = tmp_path / "dataset.json"
    p.write_text('[\n  {"input": "q", "output_1": "a", "output_2": "b", "label": 1},\n  {"input": \n]')
    with pytest.raises(RecordError, match=r"dataset.json:4: not valid JSON"):
        load_pairs(p)


def test_jsonl_errors_name_the_real_line(tmp_path):
    """Blank lines are skipped without shifting the line numbers in errors."""
    p = tmp_path / "bar.jsonl"
    p.write_text("\n" + json.dumps(LLMBAR[0]) + "\n\n" + json.dumps({**LLMBAR[1], "label": 0}) + "\n")
    with pytest.raises(RecordError, match=r"bar.jsonl:4: label must be 1 or 2 .*got 0"):
        load_pairs(p)
    p.write_text("\n\n")
    with pytest.raises(RecordError, match=r"bar.jsonl: no LLMBar rows"):
        load_pairs(p)


@pytest.mark.parametrize("row, match", [
    ({"prompt": "p", "response": "r", "constraints": "punctuation:no_comma"}, r"rows.jsonl:2: constraints must be"),
    ({"prompt": 3, "response": "r"}, r"rows.jsonl:2: a pointwise row needs"),
    ({"prompt": "p", "response": "r", "constraints": [{"id": "punctuation:no_coma"}]},
     r"rows.jsonl:2: unknown constraint"),
    ({"prompt": "p", "response": "r", "constraints": [{"id": "punctuation:no_comma", "kwargs": {"x": 1}}]},
     r"rows.jsonl:2: constraint 'punctuation:no_comma' takes"),
])
def test_bad_pointwise_rows_are_named(tmp_path, row, match):
    p = tmp_path / "rows.jsonl"
    good = {"prompt": "p", "response": "r", "constraints": [{"id": "punctuation:no_comma", "kwargs": {}}]}
    p.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(RecordError, match=match):
        load_pointwise(p)


def test_cli_refuses_to_write_over_its_data_before_loading_a_model(tmp_path, capsys):
    p = tmp_path / "dataset.json"
    p.write_text(json.dumps(LLMBAR))
    before = p.read_bytes()
    assert main(["eval", "judgment", "--data", str(p), "--model", "no-such-model", "--out", str(p)]) == 2
    assert p.read_bytes() == before and "is the --data file" in capsys.readouterr().err
    assert main(["eval", "judgment", "--data", str(p), "--model", "no-such-model", "--out", str(tmp_path)]) == 2
    assert main(["eval", "judgment", "--data", str(p), "--model", "no-such-model", "--n", "0"]) == 2
