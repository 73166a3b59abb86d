"""Parity with lm-eval's copy of the official IFEval checkers, on seeded fuzzed responses.

lm-eval (`pip install spar-llm[oracle]`) is the oracle only; the test skips
where it is absent. Responses are built from pieces that straddle each
rule's boundaries (counts around the target, separators, markers, case,
quotes, other languages), so both verdicts occur for every instruction id.
"""

import random

import pytest

from spar.constraints import get
from spar.constraints.ifeval_kinds import IFEVAL_IDS
from spar.constraints.text import use_bundled_nltk_data
from spar.data.ifeval_rows import IFEvalRow
from spar.eval.ifeval import follows

use_bundled_nltk_data()  # before lm-eval imports nltk and tries to download punkt_tab
oracle = pytest.importorskip("lm_eval.tasks.ifeval.utils", reason="lm-eval is the parity oracle (extra: oracle)")

PIECES = [
    "The river runs.", "Dr. Smith went home.", "e.g. this one", "I SAID NO.", "OK", "hello, world", "a, b, c",
    "***", " *** ", "\n\n", "\n", "* item one", "- item two", "*highlight*", "**bold part**", "** **", "<<My Title>>",
    "<< >>", "******", "P.S. see you", "p. p. s later", "P.P.S", "Section 1", "SECTION 2", "Part 3", "PARAGRAPH 4",
    '{"a": 1}', "```json\n[1, 2]\n```", '"', "My answer is yes.", "My answer is maybe", "[name]", "[address]",
    "Any other questions?", "That is all.", "El perro come en la casa con su familia.", "Le chat dort sur le lit.",
    "Der Hund spielt im Garten mit dem Ball.", "Is there anything else I can help with?", "NASA", "U.S.A.", "Mr. Lee",
    "Wait... really?!", "1. first", "2) second", "garden garden", "memory", "Lights", "zzz", "12,000", ":)",
]


def fuzz_text(rng: random.Random, extra: list[str]) -> str:
    parts = [rng.choice(PIECES + extra) for _ in range(rng.randint(0, 14))]
    text = rng.choice([" ", "\n", "\n\n", " *** ", "", "\n* "]).join(parts)
    roll = rng.random()
    if roll < 0.12:
        text = text.upper()
    elif roll < 0.24:
        text = text.lower()
    elif roll < 0.30:
        text = f'"{text}"'
    if rng.random() < 0.1:
        text = extra[0] + " " + text if extra else text
    return text


def extra_pieces(cid: str, kwargs: dict) -> list[str]:
    """Words that matter to this instruction, so its boundary gets crossed."""
    out = []
    for v in kwargs.values():
        if isinstance(v, str):
            out += [v, v.upper(), v.lower()]
        elif isinstance(v, list):
            out += [str(x) for x in v]
    return out or ["filler"]


def sample_case(cid: str, rng: random.Random) -> dict:
    prompt = rng.choice(["Write a poem about rain.", "Describe your city. Be brief."])
    kw = get(cid).sample_kwargs(rng, prompt=prompt)
    if cid == "keywords:letter_frequency":
        kw["let_frequency"] = rng.randint(1, 6)
    return kw


@pytest.mark.parametrize("cid", sorted(IFEVAL_IDS))
def test_strict_and_loose_equal_the_oracle(cid):
    rng = random.Random(cid)
    both = {True: 0, False: 0}
    for trial in range(150):
        kwargs = sample_case(cid, rng)
        extra = extra_pieces(cid, kwargs)
        inp = oracle.InputExample(key=trial, instruction_id_list=[cid], prompt="p", kwargs=[kwargs])
        row = IFEvalRow(key=trial, prompt="p", instruction_id_list=[cid], kwargs=[kwargs])
        for _ in range(8):
            text = fuzz_text(rng, extra)
            want_strict = oracle.test_instruction_following_strict(inp, text).follow_instruction_list
            want_loose = oracle.test_instruction_following_loose(inp, text).follow_instruction_list
            assert follows(row, text, loose=False) == want_strict, (cid, kwargs, text)
            assert follows(row, text, loose=True) == want_loose, (cid, kwargs, text)
            both[want_strict[0]] += 1
    if cid not in ("language:response_language",):
        assert both[True] and both[False], f"fuzzing never crossed the boundary of {cid}: {both}"


def test_zero_kwarg_follows_the_official_code_not_lm_eval():
    """lm-eval drops falsy kwargs (a 0 becomes a random threshold); the official code keeps 0.

    "fewer than 0 words" can never pass; "at least 0 words" always does.
    """
    row = IFEvalRow(key=1, prompt="p", instruction_id_list=["length_constraints:number_words"],
                    kwargs=[{"num_words": 0, "relation": "at least"}])
    assert follows(row, "anything", loose=False) == [True]
    row.kwargs = [{"num_words": 0, "relation": "less than"}]
    assert follows(row, "anything", loose=False) == [False]
