"""Judges, pinned exactly with a scripted backend (replies queued in order)."""

from spar.backends import make_backend
from spar.backends.scripted import ScriptedBackend
from spar.judge import HybridJudge, LLMJudge, VerifierJudge, make_judge
from spar.records import Instruction

SOFT = Instruction("s", "Write a cheerful note.", [{"id": "soft:tone", "kwargs": {"text": "cheerful"}}])
HARD = Instruction("h", "Write a note without commas.", [{"id": "punctuation:no_comma", "kwargs": {}}])
BOTH = Instruction("b", "Write a cheerful note without commas.", HARD.constraints + SOFT.constraints)


def test_votes_value_label_and_critique_in_one_batched_call():
    b = ScriptedBackend(["ok\nVerdict: Yes", "bad tone\nVerdict: No", "fine\nVerdict: Yes",
                         "x\nVerdict: No", "missing\nVerdict: No", "huh"])
    j = LLMJudge(b, n=3)
    v1, v2 = j.judge([(SOFT, "a"), (SOFT, "b")])
    assert len(b.calls) == 1 and len(b.calls[0][0]) == 2 and b.calls[0][1].n == 3
    assert [v["verdict"] for v in v1.votes] == ["yes", "no", "yes"]
    assert (v1.value, v1.label, v1.critique) == (2 / 3, "yes", "ok\nVerdict: Yes")
    assert [v["verdict"] for v in v2.votes] == ["no", "no", "invalid"]
    assert (v2.value, v2.label, v2.critique) == (0.0, "no", "x\nVerdict: No")  # invalid votes ignored


def test_tie_resamples_only_undecided_then_abstains():
    b = ScriptedBackend([
        "Verdict: Yes", "Verdict: No",  # item 1: tie
        "Verdict: No", "Verdict: No",  # item 2: decided
        "Verdict: Yes", "Verdict: Yes",  # round 2, item 1 -> 3 yes / 1 no
    ])
    j = LLMJudge(b, n=2, resample=2)
    v1, v2 = j.judge([(SOFT, "a"), (SOFT, "b")])
    assert len(b.calls) == 2 and len(b.calls[1][0]) == 1  # only the undecided item was asked again
    assert b.calls[0][1].seed != b.calls[1][1].seed
    assert (v1.label, v1.value, len(v1.votes)) == ("yes", 0.75, 4)
    assert v2.label == "no"
    b2 = ScriptedBackend(["nonsense"] * 6)
    v = LLMJudge(b2, n=2, resample=2).judge([(SOFT, "c")])[0]
    assert len(b2.calls) == 3 and (v.label, v.value, v.critique) == ("abstain", None, "")


def test_cache_never_judges_a_text_twice():
    b = ScriptedBackend(respond=lambda chat, i: "Verdict: Yes")
    j = LLMJudge(b, n=2)
    j.judge([(SOFT, "a"), (SOFT, "a"), (SOFT, "b")])
    assert len(b.calls[0][0]) == 2  # "a" asked once
    j.judge([(SOFT, "b"), (SOFT, "a")])
    assert len(b.calls) == 1


def test_verifier_exact_with_every_failure():
    inst = Instruction("v", "p", [{"id": "punctuation:no_comma", "kwargs": {}}, {"id": "startend:quotation", "kwargs": {}}])
    no, yes = VerifierJudge().judge([(inst, "a, b"), (inst, '"a b"')])
    assert (no.label, no.value, no.verifier["failed"]) == ("no", 0.0, ["punctuation:no_comma", "startend:quotation"])
    assert "comma" in no.critique and "quotation" in no.critique
    assert (yes.label, yes.value) == ("yes", 1.0)
    assert VerifierJudge().judge([(SOFT, "x")])[0].label == "abstain"


def test_hybrid_conjunction_and_llm_only_when_needed():
    b = ScriptedBackend(respond=lambda chat, i: "Tone is flat.\nVerdict: No")
    j = HybridJudge(b, n=1)
    hard_fail, hard_pass, both_fail, both_pass_code = j.judge([(HARD, "a, b"), (HARD, "a b"), (BOTH, "a, b"), (BOTH, "a b")])
    asked = [c[0]["content"] for chats, _ in b.calls for c in chats]
    assert len(asked) == 1 and "a b" in asked[0] and "already checked by a program" in asked[0]
    assert (hard_fail.label, hard_pass.label, both_fail.label) == ("no", "yes", "no")
    assert "comma" in both_fail.critique  # code failure decides, its reason is the critique
    assert (both_pass_code.label, both_pass_code.value) == ("no", 0.0)
    assert "Tone is flat" in both_pass_code.critique and both_pass_code.verifier["passed"]


def test_make_judge_errors():
    import pytest

    with pytest.raises(ValueError, match="choose llm, verifier or hybrid"):
        make_judge("majority")
    with pytest.raises(ValueError, match="needs a backend"):
        make_judge("llm")


def test_llm_judge_on_tiny_model():
    backend = make_backend("hf", "tiny-random")
    j = make_judge("llm", backend, n=3, max_new_tokens=8)
    verdicts = j.judge([(SOFT, "hello"), (HARD, "a, b")])
    for v in verdicts:
        assert len(v.votes) >= 3 and v.label in ("yes", "no", "abstain")
        assert v.value is None or 0 <= v.value <= 1
