"""Bootstrap (the paper's SPaR-SFT) before iteration 0, teacher-free and with a teacher (issue 12 item 4).

Repairs are checked by the verifier; the whole stage runs in the loop on the tiny model (real SFT of both roles),
once from code alone and once with a teacher behind a local OpenAI-compatible server started here. Iteration 0
then starts from the bootstrap's checkpoints, and a rerun skips the finished stages.
"""

import json
from pathlib import Path

import pytest
from chat_server import ChatServer, choices, send_json

from spar.backends.scripted import ScriptedBackend
from spar.config import load_config
from spar.constraints import verify
from spar.parsing import REFINED_END, REFINED_START
from spar.records import Instruction
from spar.selfplay.bootstrap import REPAIRS, repair, teacher_free_data
from spar.selfplay.loop import Loop

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"
QUOTES = REPO / "tests" / "assets" / "quote_instructions.jsonl"
TEXT = "Hello, this is a short answer! It has 3 points. The second one is here. And a final one - with a dash."


@pytest.mark.parametrize("cid, kwargs", [
    ("change_case:english_lowercase", {}), ("punctuation:no_comma", {}), ("startend:quotation", {}),
    ("detectable_format:json_format", {}), ("detectable_format:title", {}),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}),
    ("startend:end_checker", {"end_phrase": "Talk soon."}),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2}),
    ("detectable_format:numbered_list", {"num_items": 3}), ("keywords:existence", {"keywords": ["river", "stone"]}),
    ("keywords:forbidden_words", {"forbidden_words": ["short", "dash"]}), ("numeric:no_digits", {}),
    ("length_constraints:number_words", {"num_words": 8, "relation": "less than"}),
    ("change_case:title_case", {}), ("case:caps_run", {"run_length": 3}),
    ("case:heading_title_case", {"min_headings": 2}), ("lexical:keyword_every_paragraph", {"keyword": "river"}),
    ("punctuation:parentheses", {"num_parentheses": 2}),
    ("detectable_content:emoji_count", {"num_emojis": 2, "relation": "at least"}),
    ("numeric:number_count", {"num_numbers": 1, "relation": "less than"}), ("structure:code_block", {"language": "python"}),
    ("structure:bold_lead_in", {"min_bullets": 3}), ("structure:bullets_end_with_period", {"min_bullets": 3}),
    ("template:subject_line", {"max_words": 5}), ("template:labeled_fields", {"labels": ["Goal", "Plan"]}),
    ("keywords:repeat_phrase", {"phrase": "step by step", "times": 2}),
    ("lexical:keyword_in_first_sentence", {"keyword": "river"}), ("sentence:paragraph_last_word", {"word": "today"}),
    ("numeric:percentages", {"num_percentages": 2}), ("length:short_opening", {"max_words": 4}),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"}),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "meanwhile"}),
    ("length:exact_lines", {"num_lines": 3}), ("length:sentences_per_paragraph", {"max_sentences": 2}),
    ("structure:countdown_list", {"start": 3}),
])
def test_each_repair_passes_the_verifier(cid, kwargs):
    rule = [{"id": cid, "kwargs": kwargs}]
    assert not verify(TEXT, rule).passed
    fixed = repair(TEXT, rule, "Write about a river.")
    assert fixed is not None and verify(fixed, rule).passed


@pytest.mark.parametrize("cid, kwargs, text, expected", [
    ("lexical:keyword_every_paragraph", {"keyword": "river"}, "A river runs.\n\nHills rise.",
     "A river runs.\n\nHills rise. River matters here."),
    ("sentence:paragraph_last_word", {"word": "today"}, "We sail today.\n\nWe rest!", "We sail today.\n\nWe rest today."),
    ("punctuation:parentheses", {"num_parentheses": 1}, "One (a) and two (b) and three (c).", "One (a) and two and three."),
    ("keywords:repeat_phrase", {"phrase": "on time", "times": 1}, "On time. Be on time, on time.", "On time. Be,."),
    ("template:subject_line", {"max_words": 4}, "Subject: a very long subject line for this\nBody.",
     "Subject: Write About A River\n\nBody."),
    ("case:heading_title_case", {"min_headings": 1}, "# the plan for today\nText.", "# The Plan for Today\nText."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "A one.\n\n1. B two.\n2. C.\n\nD four.",
     "A one.\n\n1. B two.\n2. C.\n\n***\n\nD four."),
    ("case:heading_title_case", {"min_headings": 2}, "Intro.\n\n1. Step.\n2. Step.",
     "## Part 1\nIntro.\n\n## Part 2\n1. Step.\n2. Step."),
])
def test_repairs_edit_only_what_fails(cid, kwargs, text, expected):
    """Paragraphs that already comply are kept; extra remarks or phrases are dropped from the end; a subject line
    that is too long is written again; existing headings are recased (minor words stay lower case); an answer
    regrouped into parts keeps its paragraphs (and the lines of a list) where it has enough of them."""
    assert repair(text, [{"id": cid, "kwargs": kwargs}], "Write about a river.") == expected


def test_unrepairable_failures_are_skipped():
    assert "sentence:acrostic" not in REPAIRS
    assert repair(TEXT, [{"id": "sentence:acrostic", "kwargs": {"word": "cat"}}]) is None
    assert repair(TEXT, [{"id": "punctuation:no_comma", "kwargs": {}},
                         {"id": "sentence:acrostic", "kwargs": {"word": "cat"}}]) is None
    assert repair("already fine", [{"id": "punctuation:no_comma", "kwargs": {}}]) is None  # nothing to repair


def test_teacher_free_data_is_short_critique_and_minimal_edit():
    inst = Instruction(id="a", prompt="Say hi. No commas.", constraints=[{"id": "punctuation:no_comma", "kwargs": {}}])
    actor, refiner = teacher_free_data([inst], [["Hi, there.", "Hi there."]], hybrid=True, prefill=True)
    assert [e.messages[-1]["content"] for e in actor] == ["Hi there."]
    judge_no, refine, judge_yes = refiner
    assert judge_no.kind == "judge" and judge_no.label == "no" and judge_no.messages[-1]["content"].endswith(
        "Verdict: No") and "comma" in judge_no.messages[-1]["content"]
    assert refine.kind == "refine" and refine.messages[-1]["content"] == f"{REFINED_START}\nHi there.\n{REFINED_END}"
    assert judge_yes.label == "yes" and judge_yes.messages[-1]["content"].endswith("Verdict: Yes")


def test_teacher_free_data_repairs_up_to_per_instruction_distinct_failing_answers():
    inst = Instruction(id="a", prompt="Say hi. No commas.", constraints=[{"id": "punctuation:no_comma", "kwargs": {}}])
    answers = [["Hi, there.", "Hi, there.", "Hello, you.", "Hey, all."]]
    one, _ = teacher_free_data([inst], answers, hybrid=True, prefill=True)
    assert [e.messages[-1]["content"] for e in one] == ["Hi there."]
    two, refiner = teacher_free_data([inst], answers, hybrid=True, prefill=True, per_instruction=2)
    assert [e.messages[-1]["content"] for e in two] == ["Hi there.", "Hello you."]  # the duplicate counted once
    assert [e.kind for e in refiner] == ["judge", "refine"] * 2


def _run(tmp_path, monkeypatch, *overrides):
    actor = ScriptedBackend(respond=lambda chat, i: "A plain note.", name="actor")
    refiner = ScriptedBackend(respond=lambda chat, i: "Not quoted.\nVerdict: No", name="refiner")
    backends = {"actor": actor, "refiner": refiner}
    monkeypatch.setattr(Loop, "backend", lambda self, role, name: backends[role])
    cfg = load_config(LOOP, [f"out_dir={tmp_path}", f"data.source={QUOTES}", "iterations=1", "judge.kind=llm",
                             "search.prefill=true", "search.max_refinements=2", "search.max_depth=1",
                             "bootstrap.enabled=true", "bootstrap.n=5", "bootstrap.train.epochs=1",
                             "bootstrap.train.lr=1.0e-3", *overrides])
    loop = Loop(cfg)
    loop.run()
    return loop, json.loads((tmp_path / "loop" / "manifest.json").read_text())["iterations"]


def test_teacher_free_bootstrap_in_the_loop(tmp_path, monkeypatch):
    loop, manifest = _run(tmp_path, monkeypatch)
    boot = manifest["bootstrap"]
    assert boot["data"]["instructions"] == 5 and boot["data"]["actor_examples"] == 5
    assert boot["data"]["refiner_judge"] == 5 and boot["data"]["refiner_refine"] == 5
    actor_sft = [json.loads(x) for x in (tmp_path / "loop/bootstrap/actor_sft.jsonl").read_text().splitlines()]
    assert {e["messages"][-1]["content"] for e in actor_sft} == {'"A plain note."'}  # the quotes added, nothing else
    assert boot["train_actor"]["trained"] and boot["train_refiner"]["trained"] and "scores" in boot["eval"]
    # iteration 0 starts from the bootstrap's checkpoints
    assert loop.models_for(0) == (boot["train_actor"]["model"], boot["train_refiner"]["model"])
    assert manifest["0"]["train_actor"]["model"] != boot["train_actor"]["model"] or not manifest["0"][
        "train_actor"]["trained"]
    # spar run's table has a row for the bootstrap and the seen / unseen columns
    from spar.selfplay.loop import format_summary

    table = format_summary(loop.summary()).splitlines()
    assert table[1].split()[-2:] == ["seen", "unseen"] and [r.split()[0] for r in table[2:5]] == ["base", "boot", "0"]
    # a rerun finds every stage done
    before = (tmp_path / "loop" / "manifest.json").read_text()
    _run(tmp_path, monkeypatch)
    assert (tmp_path / "loop" / "manifest.json").read_text() == before


class Teacher(ChatServer):
    """An OpenAI-compatible chat server playing a capable teacher on the quote instructions."""

    def __init__(self):
        self.requests = []
        super().__init__()

    def answer(self, handler, body):
        self.requests.append(body)
        send_json(handler, 200, {"choices": choices([self.reply(body["messages"])] * body.get("n", 1)),
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    @staticmethod
    def reply(messages):
        if len(messages) > 1:  # a refine request after the judge turn and the critique
            return f"Add the quotes.\n{REFINED_START}\n\"A plain note.\"\n{REFINED_END}"
        content = messages[-1]["content"]
        if "[Response]" in content:  # a judge request
            response = content.split("[Response]\n")[1].split("\n")[0]
            quoted = response.startswith('"') and response.endswith('"')
            return "Quoted.\nVerdict: Yes" if quoted else "It is not wrapped in double quotes.\nVerdict: No"
        return '"A teacher\'s note."'


def test_teacher_bootstrap_against_a_local_server(tmp_path, monkeypatch):
    teacher = Teacher()
    monkeypatch.setenv("TEACHER_KEY", "sk-test")
    try:
        _, manifest = _run(tmp_path, monkeypatch, f"bootstrap.teacher={{base_url: {teacher.url}, model: teach, "
                                                  f"api_key_env: TEACHER_KEY}}")
    finally:
        teacher.close()
    boot = manifest["bootstrap"]
    assert boot["data"]["teacher"] == "teach" and boot["data"]["actor_examples"] == 5
    assert boot["data"]["refiner_judge"] == 5 and boot["data"]["refiner_refine"] == 5
    assert {r["model"] for r in teacher.requests} == {"teach"}
    refiner_sft = [json.loads(x) for x in (tmp_path / "loop/bootstrap/refiner_sft.jsonl").read_text().splitlines()]
    refine = [e for e in refiner_sft if e["kind"] == "refine"]
    # stored in the search's prefilled format, whatever the teacher wrote around the markers
    assert all(e["messages"][-1]["content"] == f'{REFINED_START}\n"A plain note."\n{REFINED_END}' for e in refine)
    actor_sft = [json.loads(x) for x in (tmp_path / "loop/bootstrap/actor_sft.jsonl").read_text().splitlines()]
    assert {e["messages"][-1]["content"] for e in actor_sft} == {'"A teacher\'s note."'}
    assert boot["train_actor"]["trained"] and boot["train_refiner"]["trained"]


def test_resume_accepts_a_moved_teacher_and_refuses_another_one():
    from spar.config import resume_changes

    teacher = "bootstrap.teacher={base_url: http://a:8000/v1, model: m}"
    old = load_config(None, ["bootstrap.enabled=true", teacher])
    moved = load_config(None, ["bootstrap.enabled=true", teacher.replace("a:8000", "b:9000"),
                               "bootstrap.teacher.api_key_env=KEY"])
    accepted, refused = resume_changes(old, moved, 1)
    assert set(accepted) == {"bootstrap.teacher.base_url", "bootstrap.teacher.api_key_env"} and not refused
    other = load_config(None, ["bootstrap.enabled=true", teacher.replace("model: m", "model: n")])
    assert set(resume_changes(old, other, 1)[1]) == {"bootstrap.teacher.model"}
