"""Verdict and refinement parsing: pinned cases and property tests."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spar.parsing import REFINED_END, REFINED_START, parse_preference, parse_refinement, parse_verdict


# The strict rule (spar/parsing.py): the last line that starts with a verdict label decides, by the first word
# after the label; without one, only a final line that is nothing but "Yes"/"No" counts. Prose never counts.
VERDICTS = [
    # issue 10 item 1: prose after a labelled verdict was read as the verdict ("no" for both)
    ("Verdict: Yes. The answer is no longer than 100 words.", "yes"),
    ("Final answer: yes\n...the answer is no more than 3 sentences", "yes"),
    # the form the judge prompt asks for, and its usual decorations
    ("The response is fine.\nVerdict: Yes", "yes"),
    ("Verdict: No", "no"),
    ("VERDICT: NO", "no"),
    ("  VERDICT :  yes  ", "yes"),
    ("Verdict:   \t  No", "no"),
    ("Verdict:No", "no"),
    ("**Verdict:** No", "no"),
    ("**Verdict:** *No*   ", "no"),
    ("It has No. commas? None.\nNot good at all.\nVerdict: **Yes**", "yes"),
    ("### Verdict: No", "no"),
    ("> Verdict: *Yes*", "yes"),
    ("- Verdict: No (the title is missing)", "no"),
    ("3. Verdict: yes", "yes"),
    ("Verdict: \"Yes\"", "yes"),
    ("Verdict: [No]", "no"),
    ("Verdict: `No`.", "no"),
    ("Verdict: Yes!", "yes"),
    ("Verdict - No", "no"),
    ("Verdict \u2014 No", "no"),
    ("Final verdict: yes", "yes"),
    ("Final Verdict: No.", "no"),
    ("Overall verdict: No", "no"),
    ("Judgement - YES", "yes"),
    ("Judgment: no, it misses the title", "no"),
    ("Final decision: No", "no"),
    ("Final answer - yes", "yes"),
    ("My verdict is: No", "no"),
    ("The final verdict is Yes.", "yes"),
    ("The verdict: yes", "yes"),
    ("Verdict: Yes, no problems found", "yes"),  # the first word after the label counts
    # a verdict line followed by blank lines or by prose holding yes/no
    ("Verdict: No.\n\n", "no"),
    ("Verdict: No\n\n   \n", "no"),
    ("Verdict: Yes\n\nThe response is short: no more than 50 words, no commas.", "yes"),
    ("Verdict: Yes\nNote: the answer has no commas.", "yes"),
    # a realistic step-by-step critique
    ("1. Word count: 80 words, which is no more than 100. Met.\n2. No commas: met, there are no commas.\n"
     "Verdict: Yes", "yes"),
    ("Requirement 2 (no commas): No, there is a comma after 'Hello'.\nVerdict: No", "no"),
    ("The response uses commas, so it does not follow the instruction.\n\n**Verdict: No**", "no"),
    # the label on its own line, the word on the next
    ("**Verdict:**\nNo", "no"),
    ("Verdict:\n\n  Yes.", "yes"),
    ("Verdict:\nThe response is fine.", "invalid"),
    # several verdict lines: the last decides, even when unreadable
    ("Verdict: Yes\nWait, I missed one.\nVerdict: No", "no"),
    ("verdict: no\nverdict: yes\n\n", "yes"),
    ("Verdict: Yes\nFinal verdict: Partially", "invalid"),
    # a final line that is only the word
    ("All requirements are met.\n\n**Yes**", "yes"),
    ("The title is missing.\nNo.", "no"),
    # labelled, but not yes or no
    ("Verdict: Nope", "invalid"),
    ("Verdict: Not really", "invalid"),
    ("Verdict: none of the requirements are met", "invalid"),
    ("Verdict: The response follows all requirements.", "invalid"),
    ("Verdict:", "invalid"),
    # no verdict line: prose never counts, wherever yes/no stands
    ("The answer has no title.\nSo: no.", "invalid"),  # was "no": the last word of the last line
    ("Everything is right. Yes", "invalid"),  # was "yes"
    ("The response meets every requirement.\nYes, it does.", "invalid"),
    ("There are no commas. No title though.", "invalid"),
    ("None of the rules are broken.\nNot a single issue.", "invalid"),  # Not/None are not No
    ("Answer: no more than three sentences - met.\nThe response meets everything.", "invalid"),
    ("Verdict Yes", "invalid"),  # a label needs a separator or "is"
    ("Verdicts: yes", "invalid"),
    ("I cannot tell.", "invalid"),
    ("", "invalid"),
    ("   \n\n  ", "invalid"),
]


@pytest.mark.parametrize("text, want", VERDICTS)
def test_pinned_verdicts(text, want):
    """Issue 10 item 1: the old parser read "Verdict: Yes. The answer is no longer than 100 words." as "no"."""
    assert parse_verdict(text) == want


def test_non_text_is_invalid():
    assert parse_verdict(None) == "invalid" and parse_preference(None) is None


ADVERSARIAL_100K = [
    "Verdict" + " " * 100_000,  # issue 13 item 5: N=400 spaces took 124 s with the old regex
    "verdict:" * 12_500,
    "Verdict: " * 11_000,
    "Final " * 16_000 + "verdict",
    ("Verdict" + " " * 400 + "\n") * 250,
    "Verdict:" + " \t" * 50_000 + "x",
    "Verdict: " + "\"" * 100_000,
    "*" * 100_000,
    "\n" * 100_000,
    "- " * 50_000,
    "yes no " * 14_000,
    "Better" + " " * 100_000,
    "better:" * 14_000,
    "Better: response " * 6_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL_100K, ids=range(len(ADVERSARIAL_100K)))
def test_parsing_is_linear_on_100kb_adversarial_text(text):
    """Issue 13 item 5: "Verdict" and a few hundred spaces backtracked for minutes in the labelled-verdict regex."""
    start = time.perf_counter()
    parse_verdict(text)
    parse_preference(text)
    parse_refinement(text)
    assert time.perf_counter() - start < 1.0


@given(st.text())
@settings(max_examples=2000, deadline=None)
def test_verdict_never_raises(text):
    assert parse_verdict(text) in ("yes", "no", "invalid")
    assert parse_preference(text) in (None, 1, 2)


ADVERSARIAL = st.lists(st.sampled_from(["Verdict", ":", "Yes", "No", "no", "*", "**", "\n", " ", "Not", "None", "yes.",
                                        "final answer", "`", "#", REFINED_START, REFINED_END, "x"]),
                       max_size=30).map("".join)


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
