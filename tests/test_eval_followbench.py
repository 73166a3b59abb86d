"""`spar eval followbench`: FollowBench's files read, answered, scored by code and by a judge, HSR/SSR/CSL by level.

The rows under tests/assets/followbench are spar's own, written in FollowBench's file format (one JSON array per
category, levels 0-5 per example_id, the example file levels 1-5). Exact metrics come from scripted backends; one
run drives the tiny model through the real hf backend.
"""

import json
import shutil
import time
from pathlib import Path

import pytest

import spar.backends
from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.eval import followbench as fb
from spar.parsing import parse_yes_no_list

ASSETS = Path(__file__).parent / "assets" / "followbench"


# ---- reading the judge's list


def test_yes_no_list_reads_the_last_list_and_skips_headings():
    assert parse_yes_no_list("1) tone: met\n2) length: not met\n['YES', 'NO']", 2) == [True, False]
    assert parse_yes_no_list("**[YES, PARTIAL, N/A]**", 3) == [True, False, False]
    # a heading in brackets after the list is not a list of answers: the list before it is read
    assert parse_yes_no_list("[YES, YES]\n[Rewrite 2]", 2) == [True, True]
    assert parse_yes_no_list("[YES, NO]", 3) is None  # the wrong number of answers
    assert parse_yes_no_list("Rewrite 1 adds a tone. It is met.", 1) is None
    assert parse_yes_no_list("[yes, perhaps]", 2) is None


def test_yes_no_list_is_linear_on_bracket_runs():
    """A judgment of many brackets must not take quadratic time (each bracket scanned once)."""
    t = time.process_time()  # CPU time: the machine running the tests may be shared
    assert parse_yes_no_list("[" + "]" * 100_000, 1) is None
    assert parse_yes_no_list("[x]" * 33_000, 1) is None
    assert parse_yes_no_list("[" * 100_000 + "YES]", 1) == [True]
    assert time.process_time() - t < 1.0


def test_level_one_also_takes_a_bare_verdict():
    assert fb.read_judgment("The answer names the keeper.\nYES", 1) == [True]
    assert fb.read_judgment("Verdict: No", 1) == [False]
    assert fb.read_judgment("YES", 2) is None


# ---- checks by code, as FollowBench's


def _group(category, source, example_id=1, top="", targets=None):
    levels = {k: fb.Row(category, example_id, k, top if k == 5 else f"level {k}",
                        (targets or {}).get(k, ""), source) for k in range(6)}
    g = fb.Group(category, example_id, levels)
    g.method = fb.scoring_method(g)
    return g


def test_template_match_one_line_answer_in_the_target_form():
    target = "{instruction}\n{{'result': '{answer}'}}"
    assert fb.template_match(target, "{'result': 'dry'}")
    assert not fb.template_match(target, "{'result': 'dry'} because rain stops")
    assert not fb.template_match(target, "{'result': 'two\nlines'}")  # {answer} is one line, as FollowBench's .*
    assert fb.template_match("{instruction}\nA (1+1): {answer}", "A (1+1): 2")  # the rest is literal text


def test_target_checks():
    bbh = _group("situation", "BBH_logical", targets={k: "(B)" for k in range(6)})
    assert bbh.method == "target"
    assert fb.code_check(bbh, 1, "(A) is wrong, so (B)") and not fb.code_check(bbh, 1, "(B), no: (C)")
    wiki = _group("content", "WIKIEVENTS", targets={k: "a b\nc d" for k in range(6)})
    assert fb.code_check(wiki, 2, "c d\na b") and not fb.code_check(wiki, 2, "a b\nx")
    gsm = _group("situation", "gsm_8k", targets={k: "$7" for k in range(6)})
    assert fb.code_check(gsm, 3, "  $3 + $4 = $7\n") and not fb.code_check(gsm, 3, "7 dollars")


def test_fixed_checks_are_cumulative_by_level():
    xsum = _group("mixed", "xsum", top="... Make sure 'Newton Stewart' does not appear ...")
    assert xsum.method == "fixed"
    good = "Crews are running a clean-up operation across the valley"
    assert all(fb.code_check(xsum, k, good) for k in fb.LEVELS)
    # naming the town fails level 3 and every level above it, not levels 1-2
    bad = "Crews are running a clean-up operation near Newton Stewart"
    assert [fb.code_check(xsum, k, bad) for k in fb.LEVELS] == [True, True, False, False, False]
    # the same source on other rows (no marker in the top instruction) is left to the judge
    assert _group("mixed", "xsum", top="Summarize the harbour report.").method == "judge"


def test_format_group_30_keeps_followbench_order():
    """FollowBench checks five "**N...:" points at level 2 of format group 30, though the instruction asks for
    keywords only at level 5; kept, so the numbers compare with FollowBench's."""
    g = _group("format", "koala", example_id=30, top='... using the marker "**" ...')
    assert g.method == "fixed"
    one_marker = "**Growth** brings new jobs and new firms to every town in the country."
    assert fb.code_check(g, 1, one_marker) and not fb.code_check(g, 2, one_marker)


# ---- the files


def test_assets_load_in_followbench_format():
    groups = fb.load_followbench(str(ASSETS))
    assert [g.name for g in groups] == ["content/1", "content/2", "situation/1", "situation/2", "style/1",
                                        "format/1", "format/22", "example/1", "mixed/1", "mixed/2"]
    methods = {g.name: g.method for g in groups}
    assert methods["content/2"] == methods["situation/2"] == methods["mixed/1"] == "target"
    assert methods["example/1"] == "template"
    # example_id 22 of our own rows is not FollowBench's wooden-table group: the judge scores it
    assert methods["format/22"] == methods["content/1"] == "judge"
    assert groups[0].levels[2].where == f"{ASSETS / 'content_constraints.json'}:18"
    assert [g.name for g in fb.load_followbench(str(ASSETS), ["style", "mixed"], limit=1)] == ["style/1", "mixed/1"]


def test_judge_prompt_shows_the_path_up_to_the_row():
    g = next(g for g in fb.load_followbench(str(ASSETS)) if g.name == "content/1")
    p = fb.judge_prompt(g, 3, "ANSWER")
    assert g.levels[0].instruction in p and g.levels[3].instruction in p and g.levels[4].instruction not in p
    assert "[Rewrite 3]" in p and "[Rewrite 4]" not in p and "content constraint" in p and "list of 3" in p


# ---- the command, with scripted answers and judgments

ANSWERS = {  # (category, example_id) -> answer per level 1..5
    ("content", 2): ["Porto", "Oslo", "Oslo", "Bergen", "Bergen"],  # L3 and L5 wrong: [1,1,0,1,0]
    ("situation", 2): ["$6", "She pays $7.", "$8", "$19", "$1 change"],  # L3 wrong: [1,1,0,1,1]
    ("example", 1): ["Answer: dry", "Answer: dry", "Answer: dry", "dry", "Answer: dry\n"],  # [1,1,1,0,1]
    ("mixed", 1): ["The cat sat on the mat", "The dog sat on the mat", "The dog sat on the mat.",
                   "The dog sat on the rug.", "The dog sits on the rug."],  # all right
}


def _backend(fail_after=None):
    groups = fb.load_followbench(str(ASSETS))
    by_instruction = {g.levels[k].instruction: ANSWERS.get((g.category, g.example_id), ["An answer."] * 5)[k - 1]
                      for g in groups for k in fb.LEVELS}

    def respond(chat, i):
        if fail_after is not None and sum(len(c) for c, _ in backend.calls) > fail_after:
            raise KeyboardInterrupt
        text = chat[-1]["content"]
        if text.startswith("An instruction was rewritten"):
            level = text.count("[Rewrite ")
            if "sky looks blue" in text and level == 4:
                return "I cannot tell which constraints were added."  # unreadable
            return "Each rewrite adds one thing.\n[" + ", ".join(["YES"] * min(level, 2) + ["NO"] * (level - 2)) + "]"
        return by_instruction[text]

    backend = ScriptedBackend(respond=respond)
    return backend


def _patch(monkeypatch, backend):
    made = []
    monkeypatch.setattr(spar.backends, "make_backend", lambda *a, **k: made.append(a) or backend)
    return made


def _args(out, *more):
    return ["eval", "followbench", "--data", str(ASSETS), "--model", "tiny-random", "--out", str(out),
            "--batch-size", "4", *more]


def test_scores_by_level_as_followbench(tmp_path, monkeypatch, capsys):
    backend = _backend()
    _patch(monkeypatch, backend)
    out = tmp_path / "out"
    assert main(_args(out)) == 0
    assert "note: 1 judgment(s) held no readable YES/NO list; they count" in capsys.readouterr().err
    r = json.loads((out / "followbench.json").read_text())
    cats = r["categories"]
    approx = lambda xs: pytest.approx(xs, abs=1e-9)  # noqa: E731
    judged_soft = [1, 1, 2 / 3, 1 / 2, 2 / 5]
    assert cats["content"]["hsr"] == approx([1, 1, 0, 0.5, 0])
    assert cats["content"]["ssr"] == approx([1, 1, (2 / 3) / 2, 0.75, 0.2])
    assert cats["content"]["csl"] == 2
    assert cats["situation"]["hsr"] == approx([1, 1, 0, 0.5, 0.5])
    assert cats["style"]["ssr"] == approx([1, 1, 2 / 3, 0, 2 / 5])  # the unreadable judgment: nothing met
    assert cats["style"]["unreadable"] == 1 and r["overall"]["unreadable"] == 1
    assert cats["format"]["hsr"] == approx([1, 1, 0, 0, 0]) and cats["format"]["ssr"] == approx(judged_soft)
    assert cats["example"]["hsr"] == cats["example"]["ssr"] == approx([1, 1, 1, 0, 1])
    assert cats["example"]["csl"] == 3
    assert cats["mixed"]["csl"] == 3.5 and cats["mixed"]["hsr"] == approx([1, 1, 0.5, 0.5, 0.5])
    assert r["overall"]["hsr"][2] == pytest.approx((0 + 0 + 0 + 0 + 1 + 0.5) / 6)
    assert r["overall"]["csl"] == pytest.approx((2 + 2 + 2 + 2 + 3 + 3.5) / 6)
    assert r["overall"]["hsr_avg"] == pytest.approx(sum(r["overall"]["hsr"]) / 5)
    # 10 groups x 5 levels answered once each; the 6 judged groups x 5 levels judged once each
    prompts = [c[-1]["content"] for chats, _ in backend.calls for c in chats]
    judge_prompts = [p for p in prompts if p.startswith("An instruction was rewritten")]
    assert len(prompts) - len(judge_prompts) == 50 and len(judge_prompts) == 30
    assert all(params.temperature == 0 for _, params in backend.calls)
    assert len((out / "responses.jsonl").read_text().splitlines()) == 50
    assert len((out / "judgments.jsonl").read_text().splitlines()) == 30
    table = (out / "table.txt").read_text()
    assert "overall" in table and "example" in table and "CSL" in table
    assert (out / "followbench.svg").read_text().lstrip().startswith("<?xml")
    row = next(x for x in r["rows"] if x["category"] == "content" and x["example_id"] == 1 and x["level"] == 3)
    assert row["met"] == [True, True, False] and row["method"] == "judge"


def test_interrupted_run_resumes(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _patch(monkeypatch, _backend(fail_after=8))  # the third batch of 4 answers dies
    assert main(_args(out)) == 130
    assert len((out / "responses.jsonl").read_text().splitlines()) == 8
    with open(out / "responses.jsonl", "a") as f:  # a write cut short by the kill
        f.write('{"key": "content/1/1", "prompt": "Des')
    backend = _backend()
    _patch(monkeypatch, backend)
    assert main(_args(out)) == 0
    asked = [c[-1]["content"] for chats, _ in backend.calls for c in chats]
    assert len([p for p in asked if not p.startswith("An instruction")]) == 42  # only the unanswered ones
    assert len((out / "responses.jsonl").read_text().splitlines()) == 50
    first = json.loads((out / "followbench.json").read_text())
    # a third run generates nothing, loads no model, and scores the same
    backend = _backend()
    made = _patch(monkeypatch, backend)
    assert main(_args(out)) == 0 and not made and not backend.calls
    again = json.loads((out / "followbench.json").read_text())
    assert again["categories"] == first["categories"]


def test_openai_flags_go_to_the_judge(tmp_path):
    import argparse

    p = argparse.ArgumentParser()
    fb.add_arguments(p)
    args = p.parse_args(["--data", str(ASSETS), "--judge-backend", "openai", "--judge-model", "big",
                         "--base-url", "http://127.0.0.1:9/v1"])
    actor, actor_options, judge, judge_options = fb._backends(args)
    assert (actor.backend, judge.backend, judge.name) == ("hf", "openai", "big")
    assert actor_options == {"batch_size": 16} and judge_options["base_urls"] == ["http://127.0.0.1:9/v1"]


def test_tiny_model_end_to_end(tmp_path, monkeypatch):
    """The real hf backend on the tiny random model answers and judges (its judgments are unreadable noise); a
    rerun loads no model."""
    out = tmp_path / "out"
    tiny = ["--limit", "1", "--categories", "content", "--max-new-tokens", "4", "--judge-max-new-tokens", "4",
            "--batch-size", "8"]
    assert main(_args(out, *tiny)) == 0
    r = json.loads((out / "followbench.json").read_text())
    assert list(r["categories"]) == ["content"] and r["categories"]["content"]["judged"] == 5
    assert len(r["rows"]) == 5 and len((out / "judgments.jsonl").read_text().splitlines()) == 5
    records = [json.loads(x) for x in (out / "responses.jsonl").read_text().splitlines()]
    assert len(records) == 5 and {x["model"] for x in records} == {"tiny-random"}
    assert {x["finish_reason"] for x in records} <= {"stop", "length"}
    before = (out / "responses.jsonl").read_bytes()
    made = _patch(monkeypatch, None)
    assert main(_args(out, *tiny)) == 0
    assert not made and (out / "responses.jsonl").read_bytes() == before


# ---- bad input: one line naming file:line or the flag, and nothing written over


def _copy(tmp_path, edit=None, name="content"):
    d = tmp_path / "data"
    shutil.copytree(ASSETS, d)
    if edit:
        path = d / fb.file_name(name)
        rows = json.loads(path.read_text())
        path.write_text(json.dumps(edit(rows), indent=4) + "\n")
    return d


def _drop(rows, index):
    return rows[:index] + rows[index + 1:]


BAD = [
    ("missing field", lambda rows: [rows[0], {k: v for k, v in rows[1].items() if k != "level"}, *rows[2:]],
     "content", "content_constraints.json:10: no field 'level'"),
    ("string level", lambda rows: [rows[0], {**rows[1], "level": "1"}, *rows[2:]], "content",
     "content_constraints.json:10: field 'level' must be an integer"),
    ("level 7", lambda rows: [rows[0], {**rows[1], "level": 7}, *rows[2:]], "content",
     "content_constraints.json:10: field 'level' is 7"),
    ("two level 1", lambda rows: [rows[0], rows[1], {**rows[2], "level": 1}, *rows[3:]], "content",
     "content_constraints.json:18: example_id 1 has level 1 twice (first at"),
    ("no level 4", lambda rows: _drop(rows, 4), "content", "content_constraints.json: example_id 1 has no level 4"),
    ("no level 0", lambda rows: rows[1:], "style", "style_constraints.json: example_id 1 has no level 0"),
    ("no {answer}", lambda rows: [{**rows[0], "target": "{instruction}\nAnswer:"}, *rows[1:]], "example",
     "example_constraints.json:2: an example row's target is its answer template"),
    ("conll target", lambda rows: rows[:7] + [{**rows[7], "target": "Porto"}] + rows[8:], "content",
     "content_constraints.json:58: a CONLL2003 row's target is a Python list"),
    ("an object", lambda rows: {"rows": rows}, "mixed", "mixed_constraints.json: holds a JSON dict, not an array"),
    ("empty level 2", lambda rows: rows[:2] + [{**rows[2], "instruction": " "}] + rows[3:], "format",
     "format_constraints.json:18: field 'instruction' is empty at level 2"),
]


@pytest.mark.parametrize("name,edit,category,message", BAD, ids=[b[0] for b in BAD])
def test_bad_rows_are_named(tmp_path, capsys, monkeypatch, name, edit, category, message):
    made = _patch(monkeypatch, ScriptedBackend(reply="x"))
    data = _copy(tmp_path, edit, category)
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    assert main(["eval", "followbench", "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before and not made
    assert not (tmp_path / "out").exists()


def test_invalid_json_names_the_line(tmp_path, capsys):
    data = _copy(tmp_path)
    path = data / "style_constraints.json"
    path.write_text(path.read_text().replace('"level": 3,', '"level": 3', 1))
    assert main(["eval", "followbench", "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    assert "style_constraints.json:31: not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("more,message", [
    (["--limit", "0"], "'--limit 0': must be >= 1"),
    (["--judge-max-new-tokens", "0"], "'--judge-max-new-tokens 0'"),
    (["--categories", "content,essay"], "'--categories content,essay': choose from"),
    (["--base-url", "http://x/v1"], "--base-url: an openai backend setting, but the backend is hf"),
])
def test_bad_flags(tmp_path, capsys, more, message):
    assert main(_args(tmp_path / "out", *more)) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_bad_data_paths(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["eval", "followbench", "--data", str(tmp_path / "empty")]) == 2
    assert "a directory without any FollowBench file" in capsys.readouterr().err
    other = tmp_path / "rows.json"
    other.write_text("[]")
    assert main(["eval", "followbench", "--data", str(other)]) == 2
    assert "not a FollowBench file name" in capsys.readouterr().err
    only = _copy(tmp_path)
    (only / "mixed_constraints.json").unlink()
    assert main(["eval", "followbench", "--data", str(only), "--categories", "mixed"]) == 2
    assert "has no mixed_constraints.json" in capsys.readouterr().err


def test_out_that_is_a_file_or_holds_another_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("keep")
    assert main(_args(tmp_path / "afile")) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "afile").read_text() == "keep"
    out = tmp_path / "out"
    out.mkdir()
    (out / "responses.jsonl").write_text('{"id": 1}\n')
    _patch(monkeypatch, _backend())
    assert main(_args(out)) == 2
    assert "responses.jsonl:1: each line needs string fields 'prompt' and 'response'" in capsys.readouterr().err
    assert (out / "responses.jsonl").read_text() == '{"id": 1}\n'


def test_resume_refuses_another_model(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    _patch(monkeypatch, _backend())
    assert main(_args(out, "--categories", "example")) == 0
    before = (out / "responses.jsonl").read_bytes()
    assert main(_args(out, "--categories", "example", "--model", "other")) == 2
    assert "model='tiny-random'" in capsys.readouterr().err
    assert (out / "responses.jsonl").read_bytes() == before
