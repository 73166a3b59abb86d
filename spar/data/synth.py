"""Procedural instruction synthesis from SPaR's constraint taxonomy.

    spar data synth --n 10000 --seed 0 --out instructions.jsonl

Each instruction is a seed task (seed_tasks.py) plus 1-3 constraints drawn
across the taxonomy (Format / Content / General). Verifiable constraints
come from the constraint library, their kwargs from `sample_kwargs`, and
are worded in one of several phrasings; soft ones (style, sentiment,
situation, genre) are recorded as `soft:<kind>` for the LLM judge.
Conflicts are avoided by groups: at most one constraint per group (one
case rule, one language rule, one length rule, one way to start, one way
to end, ...), whole-response formats (JSON, fixed answers, two responses)
stand alone, and short tasks (a haiku, a slogan) get no length or layout
rules. Deterministic for a seed; duplicates dropped; a held-out split.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

from spar.constraints import REGISTRY, get
from spar.constraints.ifeval import LANGUAGES, relation_text
from spar.data.seed_tasks import FRAMES, PASSAGE_FRAMES, PASSAGES, SHORT_FRAMES, SOFT, SOFT_TAXONOMY, SUBJECTS
from spar.errors import UserError
from spar.records import Instruction

GROUPS = {
    "case": {"change_case:english_lowercase", "change_case:english_capital", "change_case:title_case",
             "change_case:capital_word_frequency"},
    "language": {"language:response_language", "change_case:english_lowercase", "change_case:english_capital"},
    "length": {"length_constraints:number_words", "length_constraints:number_sentences", "length_constraints:number_characters",
               "length_constraints:words_per_sentence", "length_constraints:number_paragraphs",
               "length_constraints:nth_paragraph_first_word"},
    "layout": {"length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
               "detectable_format:multiple_sections", "detectable_format:number_bullet_lists", "detectable_format:numbered_list",
               "detectable_format:markdown_headers"},
    "start": {"combination:repeat_prompt", "startend:first_word", "startend:quotation", "detectable_format:title"},
    "end": {"startend:end_checker", "startend:last_word", "detectable_content:postscript", "startend:quotation"},
    "numbers": {"numeric:no_digits", "numeric:number_count", "numeric:percentages"},
    "keywords": {"keywords:existence", "keywords:forbidden_words", "keywords:frequency", "keywords:repeat_phrase"},
    "letters": {"keywords:letter_frequency", "keywords:word_count_with_letter"},
    "punctuation": {"punctuation:no_exclamation", "punctuation:question_marks"},
}
WHOLE = {"detectable_format:json_format", "detectable_format:json_keys", "detectable_format:constrained_response",
         "combination:two_responses"}
NOT_FOR_SHORT = GROUPS["length"] | GROUPS["layout"] | WHOLE | {"detectable_content:postscript", "detectable_format:title",
                                                               "numeric:percentages", "keywords:repeat_phrase"}
# Kinds whose text depends on the rest of the prompt, so other wording must not break them.
ENGLISH_ONLY = {"change_case:english_lowercase", "change_case:english_capital"}


def _alt(cid: str, kw: dict) -> list[str]:
    """Extra wordings for a constraint; describe() is always one more."""
    k = kw
    options = {
        "punctuation:no_comma": ["Do not use a single comma anywhere.", "Avoid commas completely."],
        "startend:quotation": ["Put the whole answer inside double quotes.", 'Begin and end your reply with a " character.'],
        "change_case:english_lowercase": ["Write everything in English using only lowercase letters.", "no capital letters at all, please; reply in english."],
        "change_case:english_capital": ["Reply in English, in ALL CAPS.", "Use only uppercase letters, and write in English."],
        "detectable_format:title": ["Give your answer a title in double angle brackets, like <<my title>>."],
        "language:response_language": [f"Respond only in {LANGUAGES.get(k.get('language'), '')}.",
                                       f"The entire reply must be written in {LANGUAGES.get(k.get('language'), '')}."],
        "length_constraints:number_words": [f"Use {relation_text(k.get('relation', ''), k.get('num_words', 0), 'words')} in total.",
                                            f"Your answer must have {relation_text(k.get('relation', ''), k.get('num_words', 0), 'words')}."],
        "length_constraints:number_sentences": [f"Write {relation_text(k.get('relation', ''), k.get('num_sentences', 0), 'sentences')}."],
        "detectable_format:number_bullet_lists": [f"Include exactly {k.get('num_bullets')} markdown bullet points (lines starting with * )."],
        "detectable_content:postscript": [f"End with a postscript that begins with {k.get('postscript_marker')}."],
        "startend:end_checker": [f"Your last words must be exactly: {k.get('end_phrase')}"],
        "keywords:existence": [f"Make sure to mention the words {', '.join(k.get('keywords', []))}."],
        "keywords:forbidden_words": [f"Never use these words: {', '.join(k.get('forbidden_words', []))}."],
        "detectable_content:number_placeholders": [f"Add at least {k.get('num_placeholders')} placeholders in square brackets, e.g. [name]."],
        "detectable_format:number_highlighted_sections": [f"Use markdown to highlight at least {k.get('num_highlights')} parts, like *this part*."],
        "length_constraints:number_paragraphs": [f"Write exactly {k.get('num_paragraphs')} paragraphs and put *** between them."],
        "detectable_format:json_format": ["Return the whole answer as JSON."],
        "startend:first_word": [f"The first word of your reply must be '{k.get('first_word')}'."],
        "startend:last_word": [f"Finish with the word '{k.get('last_word')}'."],
        "numeric:no_digits": ["Spell out all numbers; no digits allowed."],
        "punctuation:no_exclamation": ["Avoid exclamation marks entirely."],
        "detectable_content:hashtags": [f"Add {k.get('num_hashtags')} or more hashtags."],
    }
    return options.get(cid, [])


def phrase(cid: str, kwargs: dict, rng: random.Random) -> str:
    return rng.choice([get(cid).describe(kwargs)] + _alt(cid, kwargs))


def seed_tasks() -> list[tuple[str, bool, str]]:
    """(task, is_short, genre) for every seed task."""
    tasks = [(f.format(s), False, g) for g, frames in FRAMES.items() for f in frames for s in SUBJECTS]
    tasks += [(f.format(s), True, g) for g, frames in SHORT_FRAMES.items() for f in frames for s in SUBJECTS]
    tasks += [(f.format(p), False, "summary") for f in PASSAGE_FRAMES for p in PASSAGES]
    return tasks


def _compatible(cid: str, chosen: list[str], short: bool) -> bool:
    if short and cid in NOT_FOR_SHORT:
        return False
    if cid in chosen or (chosen and cid in WHOLE) or any(c in WHOLE for c in chosen):
        return False
    return not any(cid in members and c in members for members in GROUPS.values() for c in chosen)


def synthesize_one(rng: random.Random, tasks: list[tuple[str, bool, str]], kinds: list[str]) -> Instruction:
    task, short, genre = rng.choice(tasks)
    n_hard = rng.choices([1, 2, 3], weights=[4, 4, 2])[0]
    chosen: list[str] = []
    for _ in range(20):
        if len(chosen) == n_hard:
            break
        cid = rng.choice(kinds)
        if _compatible(cid, chosen, short):
            chosen.append(cid)
    constraints, parts = [], []  # parts: (constraint id, its sentence)
    for cid in chosen:
        kw = get(cid).sample_kwargs(rng, prompt=task)
        constraints.append({"id": cid, "kwargs": kw})
        parts.append((cid, phrase(cid, kw, rng)))
    if rng.random() < 0.35 and not any(c in ENGLISH_ONLY | {"language:response_language"} for c in chosen):
        kind = rng.choice(sorted(SOFT))
        text = rng.choice(SOFT[kind])
        constraints.append({"id": f"soft:{kind}", "kwargs": {"text": text, "taxonomy": SOFT_TAXONOMY[kind]}})
        parts.append((f"soft:{kind}", text))
    # "repeat the request" must come last: the request it repeats is everything before it
    repeat = [t for c, t in parts if c == "combination:repeat_prompt"]
    others = [t for c, t in parts if c != "combination:repeat_prompt"]
    rng.shuffle(others)
    if rng.random() < 0.3 and len(others) > 1:
        body = task + "\nRequirements:\n" + "\n".join(f"- {t}" for t in others)
    else:
        body = " ".join([task, *others])
    if repeat:
        next(c for c in constraints if c["id"] == "combination:repeat_prompt")["kwargs"]["prompt_to_repeat"] = body
        body = body + "\n" + repeat[0]
    return Instruction(id="", prompt=body, constraints=constraints, source=f"synth:{genre}")


def synthesize(n: int, seed: int = 0, heldout: float = 0.1, kinds: list[str] | None = None) -> list[Instruction]:
    """`n` distinct instructions; about `heldout` of them get split "heldout" (never trained on)."""
    rng = random.Random(seed)
    tasks = seed_tasks()
    kinds = sorted(kinds or REGISTRY)
    out, seen = [], set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise UserError(f"could only make {len(out)} distinct instructions of the {n} asked; ask for fewer")
        inst = synthesize_one(rng, tasks, kinds)
        key = re.sub(r"\s+", " ", inst.prompt.lower()).strip()
        if key in seen:
            continue
        seen.add(key)
        inst.id = f"s{seed}-{len(out):06d}"
        bucket = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        inst.split = "heldout" if bucket < heldout else "train"
        out.append(inst)
    return out


_TOKEN = re.compile(r"\w+")


def leak_check(instructions: list[Instruction], benchmark: str | Path, threshold: float = 0.8) -> list[tuple[str, str, float]]:
    """(instruction id, benchmark key, Jaccard) of every instruction that equals or nearly duplicates a benchmark prompt.

    Token-set Jaccard with a prefix filter: two sets can reach `threshold`
    only if they share a token among the rarest few of each, so most pairs
    are never compared.
    """
    from spar.data.ifeval import load_ifeval

    bench = [(str(r.key), set(_TOKEN.findall(r.prompt.lower()))) for r in load_ifeval(benchmark)]
    freq: dict[str, int] = {}
    for _, toks in bench:
        for t in toks:
            freq[t] = freq.get(t, 0) + 1
    index: dict[str, list[int]] = {}
    for j, (_, toks) in enumerate(bench):
        for t in sorted(toks, key=lambda t: (freq[t], t))[: _prefix(len(toks), threshold)]:
            index.setdefault(t, []).append(j)
    hits = []
    for inst in instructions:
        toks = set(_TOKEN.findall(inst.prompt.lower()))
        if not toks:
            continue
        candidates = {j for t in sorted(toks, key=lambda t: (freq.get(t, 0), t))[: _prefix(len(toks), threshold)]
                      for j in index.get(t, [])}
        for j in candidates:
            other = bench[j][1]
            jac = len(toks & other) / len(toks | other)
            if jac >= threshold:
                hits.append((inst.id, bench[j][0], jac))
    return hits


def _prefix(size: int, threshold: float) -> int:
    import math

    return size - math.ceil(threshold * size) + 1
