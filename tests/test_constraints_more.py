"""The constraint kinds IFEval lacks (structure.py, lexical.py): pass and fail cases, exact reasons, edge cases."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spar.constraints import REGISTRY, get, verify
from spar.constraints.extra import EXTRA_IDS
from spar.constraints.ifeval_kinds import IFEVAL_IDS
from spar.constraints.lexical import LEXICAL_IDS
from spar.constraints.structure import STRUCTURE_IDS

NEW_IDS = STRUCTURE_IDS + LEXICAL_IDS
TABLE = "| Name | Age | City |\n|---|:---:|---|\n| Ann | 3 | Oslo |\n| Bo | 4 | Rome |\n"

# (id, kwargs, a response that passes, a response that fails)
CASES = [
    ("length:words_per_paragraph", {"min_words": 2, "max_words": 4}, "One two three.\n\nFour five.",
     "One two three.\n\nFour five six seven eight."),
    ("length:words_per_paragraph", {"min_words": 2, "max_words": 4}, "## A Title\r\n\r\nOne two.\r\n\r\nThree four.",
     ""),
    ("length:sentences_per_paragraph", {"max_sentences": 2}, "We sat. We ate.\n\nWe left.",
     "We sat. We ate.\n***\nWe left. It rained. We ran."),
    ("length:exact_lines", {"num_lines": 3}, "one\n\ntwo\nthree  \n", "one\ntwo"),
    ("length:exact_lines", {"num_lines": 2}, "one\r\ntwo\r\n", "one\r\ntwo\r\nthree"),
    ("structure:alphabetical_list", {"min_items": 3}, "- apple\n- **Banana**\n- cherry", "- pear\n- apple\n- fig"),
    ("structure:alphabetical_list", {"min_items": 3}, "1. Ant\n2. bee\n3. Cat", "- ant\n- bee"),
    ("structure:countdown_list", {"start": 3}, "Top picks:\n3. Oslo\n2. Rome\n1. Lima", "1. Lima\n2. Rome\n3. Oslo"),
    ("structure:numbered_steps", {"num_steps": 3}, "Step 1: mix.\n**Step 2:** bake.\n### Step 3 - eat.",
     "Step 1: mix.\nStep 3: eat."),
    ("structure:bullets_end_with_period", {"min_bullets": 2}, "- One thing.\n* Two *things.*", "- One thing.\n- Two"),
    ("structure:bold_lead_in", {"min_bullets": 2}, "- **Cost:** low\n- __Speed__: high",
     "- **Cost:** low\n- Speed: high"),
    ("structure:table_shape", {"rows": 2, "columns": 3}, "Here:\n\n" + TABLE, TABLE.replace("| Bo | 4 | Rome |\n", "")),
    ("structure:table_shape", {"rows": 2, "columns": 3}, TABLE.replace("\n", "\r\n"), "Name | Age | City"),
    ("structure:code_block", {"language": "python"}, "See:\n```python\nprint(1)\n```", "```\nprint(1)\n```"),
    ("template:qa_pairs", {"num_pairs": 2}, "Q: Why?\nA: Because.\n**Q:** How?\n**A:** Slowly.",
     "Q: Why?\nA: Because.\nQ: How?"),
    ("template:labeled_fields", {"labels": ["Pros", "Cons"]}, "**Pros:** cheap\nCons:\n- slow",
     "Cons: slow\nPros: cheap"),
    ("template:subject_line", {"max_words": 4}, "Subject: Lunch on Friday\n\nHi Ann,", "Hi Ann,\nSubject: Lunch"),
    ("length:max_word_length", {"max_letters": 6}, "Short words only here.", "An extraordinary day."),
    ("lexical:no_repeated_word", {"min_letters": 5}, "The cat and the other cat slept.", "Green trees, green hills."),
    ("lexical:keyword_every_paragraph", {"keyword": "river"}, "The River runs.\n\nA *river* bends.",
     "The river runs.\n\nRivers bend."),
    ("lexical:keyword_in_first_sentence", {"keyword": "garden"}, "# Notes\nMy garden grows. It is big.",
     "# My garden\nIt grows. The garden is big."),
    ("length:short_opening", {"max_words": 4}, "Short start here. Then a much longer sentence follows on.",
     "This opening sentence is far too long. Short."),
    ("sentence:start_letter", {"letter": "s"}, "Sun sets. *Stars* shine!\n- Soon sleep.", "Sun sets. Moon rises."),
    ("sentence:paragraph_last_word", {"word": "now"}, "Go now.\n\nCome back *NOW*!", "Go now.\n\nCome later."),
    ("sentence:ends_with_question", {}, "I liked it. Did you?** \n", "Did you? I liked it."),
    ("sentence:acrostic", {"word": "HOPE"}, "Here we are\n**Out** at sea\n- pale light\nEvening", "Here\nOut\nPale"),
    ("case:caps_run", {"run_length": 3}, "This is VERY VERY BIG news, OK.", "This is VERY BIG news."),
    ("case:caps_run", {"run_length": 2}, "Ça reste TRÈS GRAND.", "NO NO NO."),
    ("case:heading_title_case", {"min_headings": 2}, "# How the Engine Works\ntext\n## Why It Matters",
     "# How the engine works\ntext\n## Why It Matters"),
    ("charset:ascii_only", {}, "Plain \"quotes\" - fine.", "Curly \u201cquotes\u201d and caf\u00e9."),
    ("punctuation:no_dashes", {}, "- A well-known fact.\n---\n|---|---|", "It was late \u2014 very late."),
    ("punctuation:no_dashes", {}, "1) first item", "Wait -- what?"),
    ("punctuation:parentheses", {"num_parentheses": 2}, "1) A (one) and (two), :)", "Only (one) here."),
    ("numeric:date_format", {"date_format": "YYYY-MM-DD"}, "Due 2024-03-09, paid 2024-02-29.", "Due 09/03/2024."),
    ("numeric:date_format", {"date_format": "DD/MM/YYYY"}, "On 25/12/2024.", "On 12/25/2024."),
    ("numeric:date_format", {"date_format": "Month D, YYYY"}, "Since March 9, 2024.", "Since 9 March 2024."),
    ("numeric:date_format", {"date_format": "YYYY-MM-DD"}, "Due 2024-03-09.", "Due 2023-02-29."),
    ("symbol:citations", {"num_sources": 2}, "Rain helps [1]. Sun too [2].\n\n[1] Smith 2020\n[2] Lee 2021",
     "Rain helps [1]. Sun too [3].\n\n[1] Smith\n[3] Lee"),
    ("symbol:citations", {"num_sources": 1}, "Rain helps [1].\n- [1] Smith", "Rain helps [1]."),
    ("symbol:citations", {"num_sources": 2}, "Claim [1], [2].\n\n**Sources**\n1. [1] Smith\n2. [2] Lee",
     "Claim [1], [2].\n\n**Sources**\n1. [1] Smith"),
]


def test_at_least_twenty_new_kinds_none_from_ifeval_or_extra():
    assert len(NEW_IDS) >= 20 and len(set(NEW_IDS)) == len(NEW_IDS)
    assert not set(NEW_IDS) & (set(IFEVAL_IDS) | set(EXTRA_IDS))
    assert set(NEW_IDS) <= set(REGISTRY)
    assert {c[0] for c in CASES} == set(NEW_IDS), "every new kind has a pass/fail case"


@pytest.mark.parametrize("cid, kwargs, good, bad", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_pass_and_fail(cid, kwargs, good, bad):
    c = get(cid)
    kwargs = c.validate(kwargs)
    assert c.check(good, kwargs), c.explain(good, kwargs)
    assert c.explain(good, kwargs) is None
    assert not c.check(bad, kwargs)
    reason = c.explain(bad, kwargs)
    assert isinstance(reason, str) and reason and len(reason) < 200


@pytest.mark.parametrize("cid, kwargs, response, reason", [
    ("length:words_per_paragraph", {"min_words": 5, "max_words": 30}, "one two three four five\n\n" + "w " * 41,
     "paragraph 2 has 41 words; each paragraph needs 5 to 30"),
    ("structure:table_shape", {"rows": 3, "columns": 3}, TABLE,
     "the table has 2 rows and 3 columns; it needs 3 rows and 3 columns"),
    ("structure:table_shape", {"rows": 2, "columns": 3}, TABLE.replace("| Bo | 4 |", "| Bo |"),
     "row 2 of the table has 2 cells; the header has 3"),
    ("structure:numbered_steps", {"num_steps": 3}, "Step 1: a\nStep 2: b\nStep 4: c",
     "the steps are numbered 1, 2, 4; they should run 1, 2, 3"),
    ("sentence:start_letter", {"letter": "b"}, "Big day. The end.",
     "sentence 2 ('The end.') starts with 'T'; every sentence must start with 'B'"),
    ("lexical:keyword_every_paragraph", {"keyword": "sea"}, "sea\n\nland\n\nsky",
     "paragraphs 2, 3 of 3 do not mention 'sea'"),
    ("case:caps_run", {"run_length": 2}, "A GREAT BIG day", "its longest run of words in capitals has 3 words "
     "('A GREAT BIG'); it must be exactly 2"),
    ("numeric:date_format", {"date_format": "YYYY-MM-DD"}, "Due 2024-3-9.",
     "the date '2024-3-9' is not written as YYYY-MM-DD; write it like 2024-03-09"),
    ("numeric:date_format", {"date_format": "DD/MM/YYYY"}, "Due 31/04/2024.",
     "'31/04/2024' is not a real calendar date"),
    ("symbol:citations", {"num_sources": 1}, "[1] Smith\nRain helps [1].",
     "citation [1] appears after the source list starts; the list must come last"),
])
def test_explanations_name_the_place_and_the_numbers(cid, kwargs, response, reason):
    assert get(cid).explain(response, kwargs) == reason


@pytest.mark.parametrize("cid", NEW_IDS)
def test_empty_and_whitespace_responses_are_judged_without_error(cid):
    c = get(cid)
    kw = c.sample_kwargs(random.Random(1))
    for text in ["", "   \n\r\n\t", "***"]:
        ok = c.check(text, kw)
        assert (c.explain(text, kw) is None) == ok
        if c.id.split(":")[1] in {"words_per_paragraph", "table_shape", "start_letter", "acrostic", "citations"}:
            assert not ok, "a kind that asks for content fails an empty response"


@pytest.mark.parametrize("cid", NEW_IDS)
def test_sampled_kwargs_validate_and_describe(cid):
    c = get(cid)
    rng = random.Random(7)
    for _ in range(50):
        kw = c.sample_kwargs(rng, prompt="Write a short story.")
        assert c.validate(kw) == kw
        text = c.describe(kw)
        assert isinstance(text, str) and len(text) > 15 and text[0].isupper()


def test_windows_newlines_read_like_unix_ones():
    texts = {"length:exact_lines": "a\nb\nc", "structure:table_shape": TABLE,
             "template:qa_pairs": "Q: a?\nA: b.\nQ: c?\nA: d.", "sentence:acrostic": "Hi\nOh\nPa\nEh",
             "symbol:citations": "x [1] y [2]\n\n[1] a\n[2] b",
             "length:sentences_per_paragraph": "We sat. We ate.\n\nWe left. It rained. We ran."}
    kwargs = {"length:exact_lines": {"num_lines": 3}, "structure:table_shape": {"rows": 2, "columns": 3},
              "template:qa_pairs": {"num_pairs": 2}, "sentence:acrostic": {"word": "hope"},
              "symbol:citations": {"num_sources": 2}, "length:sentences_per_paragraph": {"max_sentences": 2}}
    for cid, text in texts.items():
        c = get(cid)
        assert c.check(text.replace("\n", "\r\n"), kwargs[cid]) == c.check(text, kwargs[cid])


def test_verify_reports_new_kinds_with_their_reasons():
    cons = [{"id": "length:exact_lines", "kwargs": {"num_lines": 2}}, {"id": "charset:ascii_only", "kwargs": {}}]
    r = verify("caf\u00e9", cons)
    assert r.failed == ["length:exact_lines", "charset:ascii_only"]
    assert "it has 1 non-empty lines; it needs exactly 2" in r.feedback and "U+00E9" in r.feedback


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300) | st.lists(
    st.sampled_from(["# Head", "- item.", "1. one", "Step 2:", "Q: x", "A:", "| a | b |", "|---|---|", "```py", "```",
                     "[1]", "(x)", "2024-02-30", "12/13/2024", "\u2014", "WORD", "", "***", "\r", "  ", "Subject:",
                     "\U0001F600", "caf\u00e9."]), max_size=20).map("\n".join)


@settings(max_examples=60, deadline=None)
@given(text=_TEXT, seed=st.integers(0, 1000))
def test_check_and_explain_never_raise_and_agree(text, seed):
    rng = random.Random(seed)
    for cid in NEW_IDS:
        c = get(cid)
        kw = c.sample_kwargs(rng)
        assert (c.explain(text, kw) is None) == c.check(text, kw), (cid, kw, text)
