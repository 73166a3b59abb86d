"""Judges, pinned exactly with a scripted backend (replies queued in order)."""

import pytest

from spar.backends import make_backend
from spar.backends.scripted import ScriptedBackend
from spar.config import JudgeConfig
from spar.judge import HybridJudge, LLMJudge, VerifierJudge, judge_request, make_judge
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
    inst = Instruction("v", "p", [{"id": "punctuation:no_comma", "kwargs": {}},
                                  {"id": "startend:quotation", "kwargs": {}}])
    no, yes = VerifierJudge().judge([(inst, "a, b"), (inst, '"a b"')])
    assert (no.label, no.value, no.verifier["failed"]) == ("no", 0.0, ["punctuation:no_comma", "startend:quotation"])
    assert "comma" in no.critique and "quotation" in no.critique
    assert (yes.label, yes.value) == ("yes", 1.0)
    assert VerifierJudge().judge([(SOFT, "x")])[0].label == "abstain"


def test_hybrid_conjunction_and_llm_only_when_needed():
    b = ScriptedBackend(respond=lambda chat, i: "Tone is flat.\nVerdict: No")
    j = HybridJudge(b, n=1)
    hard_fail, hard_pass, both_fail, both_pass_code = j.judge([(HARD, "a, b"), (HARD, "a b"), (BOTH, "a, b"),
                                                               (BOTH, "a b")])
    asked = [c[0]["content"] for chats, _ in b.calls for c in chats]
    assert len(asked) == 1 and "a b" in asked[0] and "already checked by a program" in asked[0]
    assert (hard_fail.label, hard_pass.label, both_fail.label) == ("no", "yes", "no")
    assert "comma" in both_fail.critique  # code failure decides, its reason is the critique
    assert (both_pass_code.label, both_pass_code.value) == ("no", 0.0)
    assert "Tone is flat" in both_pass_code.critique and both_pass_code.verifier["passed"]


def test_make_judge_errors():
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


# --- issue 10 item 2: the hybrid note says what code found; judge_request is the chat the judge is sent ---

LENGTH = {"id": "length_constraints:number_words", "kwargs": {"num_words": 3, "relation": "less than"}}
MIXED = Instruction("m", "Write a cheerful note in fewer than 3 words, without commas.",
                    [HARD.constraints[0], LENGTH] + SOFT.constraints)


def test_hybrid_note_states_which_checks_passed_and_which_failed_and_why():
    """Old failure: with always_llm the note called every hard requirement "checked by a program and met",
    even the comma rule code had just found broken."""
    b = ScriptedBackend(respond=lambda chat, i: "Verdict: No")
    HybridJudge(b, always_llm=True, n=1).judge([(MIXED, "Hi, you")])
    [sent] = b.calls[0][0]
    note = sent[0]["content"]
    assert "are met" not in note
    assert "- met: Answer with fewer than 3 words." in note
    assert "- NOT met: In your entire response, refrain from the use of any commas. (it contains 1 comma(s))" in note
    assert "makes the verdict No" in note
    assert sent == judge_request(MIXED, "Hi, you", hybrid=True)  # the one public builder, exactly


def test_judge_request_plain_and_hybrid():
    plain = judge_request(MIXED, "Hi you", hybrid=False)[0]["content"]
    hybrid = judge_request(MIXED, "Hi you", hybrid=True)[0]["content"]
    assert "program" not in plain and "Verdict: Yes" in plain
    assert "- met: In your entire response, refrain from the use of any commas." in hybrid
    assert "NOT met" not in hybrid and "makes the verdict No" not in hybrid
    # nothing checkable: the hybrid judge asks exactly what the LLM judge asks
    assert judge_request(SOFT, "x", hybrid=True) == judge_request(SOFT, "x", hybrid=False)


def test_llm_judge_sends_judge_request():
    b = ScriptedBackend(respond=lambda chat, i: "Verdict: Yes")
    LLMJudge(b, n=1).judge([(MIXED, "Hi, you")])
    assert b.calls[0][0] == [judge_request(MIXED, "Hi, you", hybrid=False)]


class CutBackend(ScriptedBackend):
    """Scripted replies ending in "..." come back as cut by max_new_tokens."""

    def generate(self, chats, params):
        out = super().generate(chats, params)
        for row in out:
            for c in row:
                c.finish_reason = "length" if c.text.endswith("...") else "stop"
        return out


def test_votes_mark_truncation_and_the_majority_critique_prefers_a_whole_one():
    """Old failure: votes had no `truncated` key and the critique kept was the first agreeing vote, cut or not."""
    b = CutBackend(["Verdict: No\nThe title is missing and...", "Verdict: Yes", "No title.\nVerdict: No",
                    "Verdict: No\nAll cut..."])
    v = LLMJudge(b, n=4).judge([(SOFT, "a")])[0]
    assert [(x["verdict"], x["truncated"]) for x in v.votes] == [("no", True), ("yes", False), ("no", False),
                                                                  ("no", True)]
    assert set(v.votes[0]) == {"verdict", "critique", "truncated"}
    assert v.critique == "No title.\nVerdict: No"
    only_cut = LLMJudge(CutBackend(["Verdict: No, cut...", "Verdict: No, cut too..."]), n=2).judge([(SOFT, "b")])[0]
    assert only_cut.critique == "Verdict: No, cut..."  # no whole critique agrees: the cut one is still the majority's


# --- issue 10 item 3: a value needs min_valid readable votes ---

def test_one_yes_and_four_unreadable_votes_abstain():
    """Old failure: value 1.0, label yes - enough to pass the search gate on a single readable vote."""
    b = ScriptedBackend(["Verdict: Yes"] + ["I think it is fine overall"] * 4)
    v = LLMJudge(b, n=5, resample=0).judge([(SOFT, "a")])[0]
    assert (v.label, v.value, v.critique) == ("abstain", None, "")
    assert len(v.votes) == 5


def test_too_few_valid_votes_resample_then_count():
    b = ScriptedBackend(["Verdict: Yes"] + ["unreadable"] * 4
                        + ["Verdict: Yes", "Verdict: No", "Verdict: Yes", "unreadable", "unreadable"])
    v = LLMJudge(b, n=5, resample=1).judge([(SOFT, "a")])[0]
    assert len(b.calls) == 2 and len(v.votes) == 10
    assert (v.label, v.value) == ("yes", 0.75)  # 3 yes / 1 no once 4 >= 3 readable votes
    b2 = ScriptedBackend(["Verdict: Yes"] + ["unreadable"] * 9)
    v2 = LLMJudge(b2, n=5, resample=1).judge([(SOFT, "a")])[0]
    assert len(b2.calls) == 2 and (v2.label, v2.value) == ("abstain", None)


def test_min_valid_setting():
    b = ScriptedBackend(["Verdict: Yes"] + ["unreadable"] * 4)
    v = LLMJudge(b, n=5, resample=0, min_valid=1).judge([(SOFT, "a")])[0]
    assert (v.label, v.value) == ("yes", 1.0)  # asked for explicitly
    assert LLMJudge(ScriptedBackend(), n=5).min_valid == 3 and LLMJudge(ScriptedBackend(), n=4).min_valid == 3
    with pytest.raises(ValueError, match="min_valid=6"):
        LLMJudge(ScriptedBackend(), n=5, min_valid=6)


@pytest.mark.parametrize("bad", [0, -1, 6, 2.5, True])
def test_judge_config_min_valid_range(bad):
    with pytest.raises(ValueError, match=r"judge.min_valid=.*from 1 to judge.n=5.*majority of n \(3\)"):
        JudgeConfig(n=5, min_valid=bad)


def test_judge_config_min_valid_default_and_passed_to_the_judge():
    assert JudgeConfig().min_valid is None and JudgeConfig(n=3, min_valid=3).min_valid == 3
    j = make_judge("hybrid", ScriptedBackend(), n=3, min_valid=3)
    assert j.llm.min_valid == 3


def test_hybrid_abstains_when_llm_votes_are_unreadable():
    b = ScriptedBackend(respond=lambda chat, i: "Looks cheerful to me.")
    v = HybridJudge(b, n=3, resample=0).judge([(BOTH, "a b")])[0]
    assert (v.label, v.value) == ("abstain", None) and v.verifier["passed"]


def test_one_readable_yes_no_longer_passes_the_search_gate():
    """Old failure: a refinement with one "yes" among five votes, the rest unreadable, got value 1.0 and ended
    the search as a success (a chosen response for DPO)."""
    from spar.config import SearchConfig
    from spar.search.engine import Root, search_trees

    def respond(chat, i):
        if "Verdict" in chat[-1]["content"] and len(chat) == 1:  # the judge prompt
            return "Verdict: Yes" if i == 0 else "It reads well enough."
        return "Better now.\n<refined>A cheerful note</refined>"

    b = ScriptedBackend(respond=respond)
    judge = LLMJudge(b, n=5, resample=0)
    [tree] = search_trees([Root(SOFT, "a dull note", "Not cheerful.\nVerdict: No")], b, judge,
                          SearchConfig(strategy="bfs", branch=1, select=1, max_depth=1))
    assert not tree.success
    assert all(n["value"] is None for n in tree.nodes[1:])
