"""Verdict and refinement parsing: pinned cases and property tests."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spar.parsing import REFINED_END, REFINED_START, parse_refinement, parse_verdict


@pytest.mark.parametrize("text, want", [
    ("The response is fine.\nVerdict: Yes", "yes"),
    ("Verdict: No", "no"),
    ("It has No. commas? None.\nNot good at all.\nVerdict: **Yes**", "yes"),
    ("**Verdict:** *No*   ", "no"),
    ("Verdict: Yes\nWait, I missed one.\nVerdict: No", "no"),  # the last verdict wins
    ("Final answer - yes", "yes"),
    ("Judgment: no, it misses the title", "no"),
    ("Verdict: Yes, no problems found", "yes"),  # both words: the labelled one counts
    ("None of the rules are broken.\nNot a single issue.", "invalid"),  # Not/None are not No
    ("The answer has no title.\nSo: no.", "no"),  # unlabelled: last word of the last line
    ("Everything is right. Yes", "yes"),
    ("I cannot tell.", "invalid"),
    ("", "invalid"),
    ("   \n\n  ", "invalid"),
    ("VERDICT: NO", "no"),
    ("Verdict: Nope", "invalid"),
])
def test_pinned_verdicts(text, want):
    assert parse_verdict(text) == want


@given(st.text())
@settings(max_examples=2000, deadline=None)
def test_verdict_never_raises(text):
    assert parse_verdict(text) in ("yes", "no", "invalid")


ADVERSARIAL = st.lists(st.sampled_from(["Verdict", ":", "Yes", "No", "no", "*", "**", "\n", " ", "Not", "None", "yes.",
                                        "final answer", "`", "#", REFINED_START, REFINED_END, "x"]), max_size=30).map("".join)


@given(ADVERSARIAL)
@settings(max_examples=2000, deadline=None)
def test_adversarial_never_raise(text):
    assert parse_verdict(text) in ("yes", "no", "invalid")
    r = parse_refinement(text)
    assert r is None or (r.response and REFINED_START not in r.response)


@given(st.text(), st.text(), st.booleans())
@settings(max_examples=1000, deadline=None)
def test_refinement_roundtrip(reasoning, body, closed):
    text = f"{reasoning}\n{REFINED_START}\n{body}\n" + (REFINED_END if closed else "")
    r = parse_refinement(text)
    inner = body.split(REFINED_END)[0].strip() if closed or REFINED_END in body else body.strip()
    if REFINED_START in body or not inner:
        return
    assert r is not None and r.response == inner


def test_refinement_cases():
    assert parse_refinement("Fix commas.\n<refined>\nNo commas here\n</refined>").response == "No commas here"
    r = parse_refinement("Drop the comma.\n<refined>Hello world")  # missing end marker tolerated
    assert r.response == "Hello world" and r.reasoning == "Drop the comma."
    assert parse_refinement("Hello world, no markers") is None  # missing start marker
    assert parse_refinement("<refined>   </refined>") is None
    assert parse_refinement("I will use <refined> and </refined>.\n<refined>Real</refined>").response == "Real"
