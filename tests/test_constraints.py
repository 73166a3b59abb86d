"""Every constraint kind, both ways: a text that passes and one that fails."""

import random

import pytest

from spar.constraints import REGISTRY, Constraint, by_taxonomy, get, verify
from spar.constraints.extra import EXTRA_IDS
from spar.constraints.ifeval_kinds import IFEVAL_IDS
from spar.constraints.lexical import LEXICAL_IDS
from spar.constraints.structure import STRUCTURE_IDS

CASES = [
    ("keywords:existence", {"keywords": ["river", "light"]}, "The River of light.", "The river alone."),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "at least"}, "cat Cat", "one cat"),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "less than"}, "one cat", "cat cat"),
    ("keywords:forbidden_words", {"forbidden_words": ["very"]}, "Everything is fine.", "It is Very fine."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "at least"}, "zZ", "z"),
    ("language:response_language", {"language": "es"},
     "El perro come en la casa con su familia.", "The dog eats at home with its family."),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "One. Two.", "One. Two. Three."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "a\n***\nb", "a\n***\n***\nb"),
    ("length_constraints:number_words", {"num_words": 3, "relation": "at least"}, "one two three", "one two"),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "garden"},
     "Intro here.\n\n\"Garden, yes.", "Intro here.\n\nHouse first."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[a] and [b]", "[a] only"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\nP.S. bye", "Hi. PS bye"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n- b", "* a\n* b\n* c"),
    ("detectable_format:constrained_response", {}, "Well. My answer is no.", "My answer is nope"),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and **two**", "*one* and ** **"),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\na\nSection 2\nb", "Section 1\na"),
    ("detectable_format:json_format", {}, "```json\n{\"a\": 1}\n```", "{a: 1}"),
    ("detectable_format:title", {}, "<<Joy>>\ntext", "<< >> text"),
    ("combination:two_responses", {}, "first******second", "same******same"),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "say hi. Hi!", "Hi! Say hi."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"},
     "Done. Any other questions?\"", "Any other questions? Yes."),
    ("startend:quotation", {}, ' "quoted" ', '"open'),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "NASA and USA", "Only NASA"),
    ("change_case:english_capital", {}, "THIS IS ALL IN CAPITAL LETTERS AND ENGLISH.", "This is not."),
    ("change_case:english_lowercase", {}, "this is all in lowercase letters and english.", "this is Not."),
    ("punctuation:no_comma", {}, "no commas here", "a, b"),
    ("length_constraints:words_per_sentence", {"max_words": 4},
     "Short one. Also short.", "This sentence has far too many words."),
    ("length_constraints:number_characters", {"num_characters": 10, "relation": "less than"},
     "short", "much longer text"),
    ("startend:first_word", {"first_word": "Today"}, "today, we rest.", "We rest today."),
    ("startend:last_word", {"last_word": "home"}, "We went Home.", "Home we went."),
    ("detectable_content:emoji_count", {"num_emojis": 2, "relation": "at least"},
     "fun \U0001F600 \u2600", "fun \U0001F600"),
    ("detectable_content:hashtags", {"num_hashtags": 2}, "#one and #two", "#one and issue#2"),
    ("keywords:palindrome", {"min_length": 5}, "a racecar", "a car"),
    ("keywords:repeat_phrase", {"phrase": "step by step", "times": 2}, "Step by step, step by step.", "step by step"),
    ("keywords:stop_word_ratio", {"max_percent": 30},
     "Bright cats chase red lasers quickly", "the cat and the dog of the house"),
    ("keywords:word_count_with_letter", {"letter": "b", "num_words": 2}, "Big blue sea", "Big sea"),
    ("detectable_format:json_keys", {"keys": ["title"]}, '{"title": "x"}', '{"name": "x"}'),
    ("detectable_format:numbered_list", {"num_items": 2}, "1. a\n2) b", "1. a\n2. b\n3. c"),
    ("detectable_format:markdown_headers", {"num_headers": 2}, "# A\ntext\n## B", "# A\n#B"),
    ("punctuation:no_exclamation", {}, "Calm.", "Wow!"),
    ("punctuation:question_marks", {"num_questions": 2}, "Why? How?", "Why?"),
    ("numeric:no_digits", {}, "twenty two", "22"),
    ("numeric:number_count", {"num_numbers": 2, "relation": "at least"}, "1,000 and 3.5", "only 7"),
    ("numeric:percentages", {"num_percentages": 1}, "about 25 %", "about 25 percent"),
    ("change_case:title_case", {}, "Every Word Counts 2day", "Every word counts"),
]


def test_counts():
    assert len(IFEVAL_IDS) == 25
    assert len(EXTRA_IDS) >= 15
    # The kinds of structure.py and lexical.py have their own table in test_constraints_more.py.
    more = set(STRUCTURE_IDS) | set(LEXICAL_IDS)
    assert {c[0] for c in CASES} == set(REGISTRY) - more, "every kind has a pass/fail case"


@pytest.mark.parametrize("cid, kwargs, good, bad", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_pass_and_fail(cid, kwargs, good, bad):
    c = get(cid)
    assert c.check(good, kwargs) and c.explain(good, kwargs) is None
    assert not c.check(bad, kwargs)
    reason = c.explain(bad, kwargs)
    assert isinstance(reason, str) and reason


def test_every_kind_computes_its_verdict_once():
    """A kind defines evaluate() (ok, reason); check and explain are the base class's, read off it. The old kinds
    computed the verdict in check and again in explain, two copies that could drift apart."""
    for cid, c in sorted(REGISTRY.items()):
        assert type(c).check is Constraint.check and type(c).explain is Constraint.explain, cid
        assert type(c).evaluate is not Constraint.evaluate, cid


@pytest.mark.parametrize("cid", sorted(REGISTRY))
def test_sampled_kwargs_are_valid_and_described(cid):
    c = get(cid)
    rng = random.Random(0)
    for _ in range(20):
        kw = c.sample_kwargs(rng, prompt="Write a poem.")
        assert c.validate(kw) == kw
        text = c.describe(kw)
        assert isinstance(text, str) and len(text) > 10
        # explain agrees with check on the instruction text itself
        assert (c.explain(text, kw) is None) == c.check(text, kw)


def test_taxonomy_classes_cover_spar():
    classes = {t.split("/")[0] for t in by_taxonomy()}
    assert classes == {"Format", "Content", "General"}
    kinds = set(by_taxonomy())
    for need in ["Format/length", "Format/text format", "Format/character format", "Format/punctuation",
                 "Format/numeric format", "Format/template", "Content/keyword", "Content/symbol", "Content/sentence",
                 "General/language"]:
        assert need in kinds


def test_bad_ids_and_kwargs_are_named():
    with pytest.raises(KeyError, match=r"punctuation:no_comma"):
        get("punctuation:no_commas")
    with pytest.raises(ValueError, match=r"'length_constraints:number_words' needs kwarg 'relation'"):
        get("length_constraints:number_words").validate({"num_words": 3})
    with pytest.raises(ValueError, match=r"num_words='3' should be int"):
        get("length_constraints:number_words").validate({"num_words": "3", "relation": "at least"})
    with pytest.raises(ValueError, match=r"relation='more than' is not one of"):
        get("length_constraints:number_words").validate({"num_words": 3, "relation": "more than"})
    assert get("punctuation:no_comma").validate({"x": None}) == {}  # nulls (hub padding) are absent


def test_verify_lists_every_failure_and_skips_soft():
    cons = [{"id": "punctuation:no_comma", "kwargs": {}}, {"id": "startend:quotation", "kwargs": {}},
            {"id": "soft:tone", "kwargs": {"text": "cheerful"}}]
    r = verify("a, b", cons)
    assert not r.passed and r.failed == ["punctuation:no_comma", "startend:quotation"]
    assert "comma" in r.feedback and "quotation" in r.feedback
    assert verify('"a b"', cons).passed
