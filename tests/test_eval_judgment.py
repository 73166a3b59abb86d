"""`spar eval judgment`: LLMBar as the paper scores it (pointwise, per subset), pairwise, verifier agreement."""

import json
import re

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.errors import UserError
from spar.eval.judgment import (PairRow, data_files, evaluate_pairs, evaluate_pairwise, evaluate_pointwise, load_llmbar,
                                load_pairs, load_pointwise, pointwise_agreement, summarize, table)
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
     r"rows.jsonl:2: constraints\[0\]: unknown constraint"),
    ({"prompt": "p", "response": "r", "constraints": [{"id": "punctuation:no_comma", "kwargs": {"x": 1}}]},
     r"rows.jsonl:2: constraints\[0\]: constraint 'punctuation:no_comma' takes"),
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


# ---- LLMBar as the paper scores it: a yes/no verdict per output, per subset


def verdicts(chat, i):
    """Yes for an output with GOOD, No for one with bad, unreadable otherwise; B when asked which is better."""
    if "Which response follows" in chat[0]["content"]:
        return "Better: B"
    text = chat[0]["content"].split("[Response]")[1]
    return "Verdict: Yes" if "GOOD" in text else "Verdict: No" if "bad" in text else "I cannot tell."


def pair(inp, o1, o2, label):
    return {"input": inp, "output_1": o1, "output_2": o2, "label": label}


def write_llmbar(root):
    """LLMBar's layout: Natural/dataset.json, Adversarial/<subset>/dataset.json."""
    subsets = {"Natural": [pair("q1", "GOOD a", "bad a", 1), pair("q2", "GOOD b", "GOOD c", 2)],
               "Adversarial/GPTInst": [pair("q3", "mumble", "bad d", 1)],
               "Adversarial/GPTOut": [pair("q4", "bad x", "GOOD y", 1)]}
    for sub, rows in subsets.items():
        (root / sub).mkdir(parents=True)
        (root / sub / "dataset.json").write_text(json.dumps(rows, indent=4))
    return root


def test_subsets_come_from_llmbars_layout_file_names_and_a_field(tmp_path):
    root = write_llmbar(tmp_path / "LLMBar")
    assert [s for _, s in data_files([str(root)])] == ["GPTInst", "GPTOut", "Natural"]
    assert data_files([str(root / "Adversarial" / "GPTOut" / "dataset.json")])[0][1] == "GPTOut"
    other = tmp_path / "llmbar-adver-neighbor.jsonl"
    other.write_text(json.dumps(pair("q", "a", "b", 1)) + "\n" + json.dumps({**pair("q", "a", "b", 2),
                                                                             "subset": "adversarial/manual"}) + "\n")
    assert [r.subset for r in load_llmbar([str(other)])] == ["Neighbor", "Manual"]


def test_limit_keeps_the_first_pairs_of_each_subset(tmp_path):
    root = write_llmbar(tmp_path / "LLMBar")
    assert [(r.subset, r.input) for r in load_llmbar([str(root)], limit=1)] == [
        ("GPTInst", "q3"), ("GPTOut", "q4"), ("Natural", "q1")]
    assert len(load_llmbar([str(root)], limit=5)) == len(load_llmbar([str(root)])) == 4


@pytest.mark.parametrize("extra, match", [(["--limit", "0"], r"--limit 0: must be at least 1"),
                                          (["--limit", "2", "--protocol", "verifier"], r"--limit 2: applies to")])
def test_cli_refuses_a_bad_limit_before_loading_a_model(tmp_path, capsys, extra, match):
    assert main(["eval", "judgment", "--data", str(write_llmbar(tmp_path / "LLMBar")), "--model", "no-such-model",
                 *extra]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_data_read_twice_or_a_directory_without_dataset_json_is_refused(tmp_path):
    root = write_llmbar(tmp_path / "LLMBar")
    with pytest.raises(UserError, match=r"is read twice"):
        data_files([str(root), str(root / "Natural" / "dataset.json")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"--data .*empty: a directory without any dataset.json"):
        data_files([str(tmp_path / "empty")])


def test_pointwise_exact_accuracy_and_f1_per_subset_and_averages(tmp_path):
    rows = load_llmbar([str(write_llmbar(tmp_path / "LLMBar"))])
    b = ScriptedBackend(respond=verdicts)
    per_n = evaluate_pointwise(rows, LLMJudge(b, n=1, resample=0, min_valid=1), [1])
    r = summarize(per_n[1])
    # Natural: yes/no right on q1, q2's output_1 wrongly yes (a false Yes): 3 of 4; F1(yes) = 2*2/(2*2+1) = 0.8
    assert r["subsets"]["Natural"] == {"accuracy": 0.75, "f1": 0.8, "f1_no": pytest.approx(2 / 3), "outputs": 4,
                                       "abstained": 0}
    # GPTInst: the labelled output unreadable (an abstention, wrong), the other rightly No
    assert r["subsets"]["GPTInst"] == {"accuracy": 0.5, "f1": 0.0, "f1_no": 1.0, "outputs": 2, "abstained": 1}
    assert r["subsets"]["GPTOut"]["accuracy"] == 0.0 and r["subsets"]["GPTOut"]["f1"] == 0.0
    assert list(r["subsets"]) == ["Natural", "GPTInst", "GPTOut"]  # the paper's column order
    assert r["adversarial"] == {"accuracy": 0.25, "f1": 0.0}
    assert r["average"]["accuracy"] == pytest.approx(1.25 / 3) and r["average"]["f1"] == pytest.approx(0.8 / 3)
    assert r["pooled"]["accuracy"] == 0.5 and r["pooled"]["outputs"] == 8
    assert len(b.calls) == 1 and len(b.calls[0][0]) == 8  # every output in one batched call


def test_vote_counts_are_prefixes_of_one_sampled_set():
    """--n 1 3 5: one call with 5 votes per output; the first 1, 3, 5 decide (a tie among readable votes or
    none readable is an abstention, not a No)."""
    script = {"MIXED": ["No", "Yes", "Yes", "No", "No"], "TIE": ["Yes", "No", "?", "?", "?"]}

    def respond(chat, i):
        text = chat[0]["content"].split("[Response]")[1]
        key = "MIXED" if "MIXED" in text else "TIE"
        return f"Verdict: {script[key][i]}" if script[key][i] != "?" else "hmm"

    rows = [PairRow("q", "MIXED", "TIE", 1, "Natural")]
    b = ScriptedBackend(respond=respond)
    per_n = evaluate_pointwise(rows, LLMJudge(b, n=5, resample=0, min_valid=1), [1, 3, 5])
    assert len(b.calls) == 1 and b.calls[0][1].n == 5
    # gold: MIXED follows (yes), TIE does not (no)
    # n=1: MIXED no (wrong), TIE yes (wrong); n=3: MIXED yes (right), TIE 1-1 abstain; n=5: MIXED no, TIE abstain
    assert [per_n[n]["Natural"]["accuracy"] for n in (1, 3, 5)] == [0.0, 0.5, 0.0]
    assert [per_n[n]["Natural"]["abstained"] for n in (1, 3, 5)] == [0, 1, 1]


def test_pairwise_protocol_per_subset():
    rows = [PairRow("q1", "GOOD", "bad", 1, "Natural"), PairRow("q2", "bad", "GOOD", 2, "Manual"),
            PairRow("q3", "x", "y", 1, "Manual")]
    b = ScriptedBackend(respond=responder)
    per = evaluate_pairwise(rows, LLMJudge(b, n=1), b)
    assert per["Natural"]["accuracy"] == 1.0 and per["Natural"]["n_pairs"] == 1
    assert per["Manual"]["accuracy"] == pytest.approx(3 / 4)  # q3 ties: "B" wins in both orders, right once
    assert per["*"]["accuracy"] == pytest.approx(5 / 6)
    r = summarize(per)
    assert r["adversarial"]["accuracy"] == pytest.approx(3 / 4) and r["average"]["accuracy"] == pytest.approx(7 / 8)


def test_cli_paper_layout_json_and_table(tmp_path, monkeypatch, capsys):
    import spar.backends

    b = ScriptedBackend(respond=verdicts)
    monkeypatch.setattr(spar.backends, "make_backend", lambda *a, **k: b)
    root = write_llmbar(tmp_path / "LLMBar")
    out = tmp_path / "m.json"
    assert main(["eval", "judgment", "--data", str(root / "Natural"), "--data", str(root / "Adversarial"),
                 "--n", "1", "3", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["protocol"] == "pointwise" and report["n_pairs"] == 4 and set(report["results"]) == {"1", "3"}
    assert (tmp_path / "m.txt").read_text() == report["table"] + "\n"  # the table and the plot beside the JSON
    svg = (tmp_path / "m.svg").read_text()
    assert "<svg" in svg and "Natural" in svg and "3 votes" in svg
    assert report["results"]["1"]["subsets"]["Natural"]["accuracy"] == 0.75
    printed = capsys.readouterr().out
    assert "Natural" in printed and "Adv. GPTInst" in printed and "Adv. avg" in printed and "Average" in printed
    row1 = next(line for line in printed.splitlines() if line.split() and line.split()[0] == "1")
    assert row1.split()[1:3] == ["75.0", "80.0"]  # Natural Acc. and F1 in percent
    assert main(["eval", "judgment", "--protocol", "pairwise", "--data", str(root), "--n", "1"]) == 0
    assert '"protocol": "pairwise"' in capsys.readouterr().out


def test_cli_verifier_protocol_keeps_the_old_pointwise_flag(tmp_path, monkeypatch, capsys):
    import spar.backends

    monkeypatch.setattr(spar.backends, "make_backend", lambda *a, **k: ScriptedBackend(respond=responder))
    p = tmp_path / "judged.jsonl"
    p.write_text(json.dumps({"prompt": "No commas.", "response": "a, b",
                             "constraints": [{"id": "punctuation:no_comma", "kwargs": {}}]}) + "\n")
    for flags in (["--pointwise"], ["--protocol", "verifier"]):
        assert main(["eval", "judgment", *flags, "--data", str(p), "--n", "1"]) == 0
        assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0
    assert main(["eval", "judgment", "--pointwise", "--data", str(p), "--n", "1", "3"]) == 2


# ---- the paper's own numbers, reproduced (SPaR Table 2)
#
# thu-coai/SPaR ships no LLMBar script, so the scoring is pinned by the paper's printed numbers: per subset,
# the confusion counts below are the only integers that give the printed Acc. and F1 when every output of
# every pair is scored (2 x pairs outputs) and F1 is that of Yes; the averages then come out as printed only
# as plain means of the unrounded subset scores. Macro F1, pairs-weighted or Natural-vs-Adversarial means
# reproduce none of these rows.

LLMBAR_PAIRS = {"Natural": 100, "GPTInst": 92, "GPTOut": 47, "Manual": 46, "Neighbor": 134}  # LLMBar's sizes


def paper_rows(counts: dict) -> list[PairRow]:
    """Synthetic LLMBar pairs with LLMBar's subset sizes; each output carries the verdict the scripted judge
    gives it: per subset (Yes on followers, No on non-followers, non-followers left undecided)."""
    rows = []
    for s, m in LLMBAR_PAIRS.items():
        tp, tn, undecided = counts.get(s, (m, m, 0))
        good = ["yes"] * tp + ["no"] * (m - tp)
        bad = ["no"] * tn + ["?"] * undecided + ["yes"] * (m - tn - undecided)
        for k in range(m):
            g, b = f"{s} {k} follows [{good[k]}]", f"{s} {k} deviates [{bad[k]}]"
            label = 1 + k % 2  # the follower shown first and second in turn
            rows.append(PairRow(f"{s} task {k}", *((g, b) if label == 1 else (b, g)), label, s))
    return rows


def marked_verdict(chat, i):
    mark = chat[0]["content"].split("[Response]")[1].split("[")[1][0]
    return {"y": "Verdict: Yes", "n": "Verdict: No"}.get(mark, "I cannot tell.")


@pytest.mark.parametrize("counts, printed", [
    # SPaR-8B-RFT-iter3: a strict judge (F1 below Acc.)
    ({"Natural": (57, 84, 0), "GPTInst": (54, 76, 0), "GPTOut": (23, 37, 0), "Manual": (25, 38, 0),
      "Neighbor": (70, 113, 0)},
     "70.5 65.9 70.7 66.7 63.8 57.5 68.5 63.3 68.3 62.2 67.8 62.4 68.3 63.1"),
    # GLM-4-9B-Chat: a lenient judge (F1 above Acc.: it says Yes too often, so F1 is that of Yes)
    ({"Natural": (83, 66, 0), "GPTInst": (74, 63, 0), "GPTOut": (33, 21, 0), "Manual": (28, 21, 0),
      "Neighbor": (104, 83, 0)},
     "74.5 76.5 74.5 75.9 57.4 62.3 53.3 56.6 69.8 72.0 63.7 66.7 65.9 68.6"),
])
def test_paper_table_2_rows_are_reproduced(counts, printed):
    """The printed row, in the paper's layout: Natural, GPTInst, GPTOut, Manual, Neighbor, Adversarial
    average, average (Acc. and F1 each)."""
    rows = paper_rows(counts)
    b = ScriptedBackend(respond=marked_verdict)
    results = {1: summarize(evaluate_pointwise(rows, LLMJudge(b, n=1, resample=0, min_valid=1), [1])[1])}
    assert table(results).splitlines()[2].split() == ["1", *printed.split()]


def test_paper_cell_with_an_undecided_output():
    """SPaR-7B-SFT on Neighbor prints Acc. 69.4, F1 62.3: no all-Yes/No set of 268 verdicts gives that pair.
    One undecided output on a non-follower, counted wrong and not as a Yes, does (186/268; 2*67/(2*67+14+67));
    scoring it as No (69.8) or dropping it (69.7) does not."""
    rows = [r for r in paper_rows({"Neighbor": (67, 119, 1)}) if r.subset == "Neighbor"]
    b = ScriptedBackend(respond=marked_verdict)
    scores = evaluate_pointwise(rows, LLMJudge(b, n=1, resample=0, min_valid=1), [1])[1]["Neighbor"]
    assert (round(100 * scores["accuracy"], 1), round(100 * scores["f1"], 1), scores["abstained"]) == (69.4, 62.3, 1)
