"""Procedural instruction synthesis from SPaR's constraint taxonomy.

    spar data synth --n 10000 --seed 0 --out instructions.jsonl [--check-leaks ifeval.jsonl]

Each instruction is a seed task (seed_tasks.py: a realistic request of some
genre, composed from parts) plus 1-3 constraints drawn across the taxonomy
(Format / Content / General). Verifiable constraints come from the
constraint library, their kwargs from `sample_kwargs`, and are worded in
one of the project's own phrasings (phrasings.py), never a benchmark's
sentence; soft ones (style, sentiment, situation, genre) are recorded as
`soft:<kind>` for the LLM judge. The constraint sentences are laid out in
one of several ways: after the task, as a requirement list, numbered,
before the task.

Conflicts are avoided by groups (at most one constraint per group: one
case rule, one language rule, one length rule, one layout, one way to
start, one way to end, ...) and by CONFLICTS (no kind of one side with a
kind of the other: a rule for every paragraph and a title that is a
paragraph of its own); whole-response formats (JSON, fixed answers, two
responses) stand alone; "repeat the request" goes only with kinds the
repeated request cannot break (REPEAT_OK), because the request it repeats
holds every other constraint sentence; short tasks (a haiku, a slogan) get
no length or layout rules. Deterministic for a seed; duplicates dropped.

The held-out split is held out by construction, not only by sampling: its
seed tasks come from frames training never uses, its constraint sentences
from phrasings training never uses, and about half of it holds one of
HELDOUT_KINDS (spar/config.py, `data.heldout_kinds`), kinds no training
instruction has.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Sequence

from spar.config import HELDOUT_KINDS
from spar.constraints import REGISTRY
from spar.data.phrasings import phrase, phrasings, sample_kwargs
from spar.data.seed_tasks import SOFT, SOFT_TAXONOMY, SeedTask, draw_task
from spar.errors import UserError
from spar.records import Instruction

LISTS = {"detectable_format:number_bullet_lists", "detectable_format:numbered_list", "structure:alphabetical_list",
         "structure:countdown_list", "structure:numbered_steps", "structure:bullets_end_with_period",
         "structure:bold_lead_in", "template:qa_pairs", "template:labeled_fields", "structure:table_shape"}
GROUPS = {
    "case": {"change_case:english_lowercase", "change_case:english_capital", "change_case:title_case",
             "change_case:capital_word_frequency", "case:caps_run", "case:heading_title_case"},
    "language": {"language:response_language", "change_case:english_lowercase", "change_case:english_capital",
                 "charset:ascii_only", "length:max_word_length"},
    "length": {"length_constraints:number_words", "length_constraints:number_sentences",
               "length_constraints:number_characters", "length_constraints:words_per_sentence",
               "length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
               "length:words_per_paragraph", "length:sentences_per_paragraph", "length:exact_lines",
               "sentence:acrostic"},
    "layout": {"length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
               "detectable_format:multiple_sections", "detectable_format:markdown_headers", "length:exact_lines",
               "sentence:acrostic", "structure:code_block", "symbol:citations", *LISTS},
    "start": {"combination:repeat_prompt", "startend:first_word", "startend:quotation", "detectable_format:title",
              "sentence:start_letter", "sentence:acrostic", "template:subject_line"},
    "end": {"startend:end_checker", "startend:last_word", "detectable_content:postscript", "startend:quotation",
            "sentence:paragraph_last_word", "sentence:ends_with_question", "sentence:acrostic", "symbol:citations"},
    "numbers": {"numeric:no_digits", "numeric:number_count", "numeric:percentages", "numeric:date_format",
                "structure:countdown_list", "detectable_format:numbered_list", "structure:numbered_steps",
                "symbol:citations", "detectable_format:multiple_sections"},
    "keywords": {"keywords:existence", "keywords:forbidden_words", "keywords:frequency", "keywords:repeat_phrase",
                 "lexical:no_repeated_word", "lexical:keyword_every_paragraph", "lexical:keyword_in_first_sentence"},
    "letters": {"keywords:letter_frequency", "keywords:word_count_with_letter", "sentence:start_letter",
                "sentence:acrostic"},
    "punctuation": {"punctuation:no_exclamation", "punctuation:question_marks"},
    "charset": {"charset:ascii_only", "detectable_content:emoji_count"},
}
# (one side, other side): no kind of the first set together with a kind of the second
CONFLICTS = [
    # a rule for every paragraph breaks on blocks that are paragraphs of their own (a title line, a P.S., a table)
    ({"length:words_per_paragraph", "sentence:paragraph_last_word", "lexical:keyword_every_paragraph"},
     {"detectable_format:title", "detectable_content:postscript", "template:subject_line", "symbol:citations",
      "structure:table_shape", "structure:code_block"}),
    # every list item or table row is a sentence of its own
    ({"length:sentences_per_paragraph"}, LISTS | {"sentence:acrostic"}),
    # lines that must start with a fixed label or number cannot all start with one letter
    ({"sentence:start_letter"},
     {"detectable_content:postscript", "startend:end_checker", "template:labeled_fields", "template:qa_pairs",
      "structure:numbered_steps", "symbol:citations", "detectable_format:multiple_sections", "structure:table_shape",
      "structure:code_block", "length_constraints:nth_paragraph_first_word", "detectable_content:hashtags"}),
    # section labels are matched case-sensitively ("Section 1"), and "Section" repeats a long word
    ({"detectable_format:multiple_sections"},
     {"change_case:english_capital", "change_case:english_lowercase", "lexical:no_repeated_word",
      "length:max_word_length"}),
    ({"lexical:no_repeated_word"}, {"lexical:keyword_every_paragraph"}),
    ({"length:max_word_length"}, {"template:labeled_fields"}),  # "Observation:", "Suggestion:"
    # "Month D, YYYY" has a comma and a capitalised month
    ({"numeric:date_format"}, {"punctuation:no_comma", "change_case:english_capital",
                               "change_case:english_lowercase"}),
    # the paragraph's first word is a keyword, which another rule may forbid or count
    ({"length_constraints:nth_paragraph_first_word"}, {"keywords:forbidden_words", "keywords:frequency"}),
]
WHOLE = {"detectable_format:json_format", "detectable_format:json_keys", "detectable_format:constrained_response",
         "combination:two_responses"}
# The request repeated word for word holds every other constraint sentence (banned words, digits, commas,
# bullets, ...), so "repeat the request" goes only with kinds that text cannot break.
REPEAT = "combination:repeat_prompt"
REPEAT_OK = {"keywords:existence", "detectable_content:postscript", "startend:end_checker", "startend:last_word",
             "detectable_format:title", "detectable_format:number_highlighted_sections",
             "change_case:english_lowercase",
             "change_case:english_capital", "change_case:title_case", "detectable_content:hashtags",
             "detectable_content:number_placeholders", "punctuation:question_marks", "numeric:percentages",
             "detectable_format:markdown_headers", "keywords:palindrome", "sentence:ends_with_question"}
NOT_FOR_SHORT = (GROUPS["length"] | GROUPS["layout"] | WHOLE
                 | {"detectable_content:postscript", "detectable_format:title", "numeric:percentages",
                    "keywords:repeat_phrase", "template:subject_line", "case:heading_title_case",
                    "numeric:date_format", "lexical:keyword_every_paragraph", "sentence:paragraph_last_word"})
# Kinds whose text depends on the rest of the prompt, so other wording must not break them.
ENGLISH_ONLY = {"change_case:english_lowercase", "change_case:english_capital"}

# How the constraint sentences sit around the task: (weight, name)
LAYOUTS = [(45, "inline"), (20, "bullets"), (10, "numbered"), (15, "first"), (10, "note")]
LIST_HEADERS = ["Requirements:", "Constraints:", "Please follow these rules:", "A few conditions:",
                "Checklist for the answer:", "Rules:", "Some requirements for your reply:"]
FIRST_INTROS = ["", "Some ground rules first. ", "Before the task, the rules: ", "Read these first: "]
NOTE_INTROS = ["Note: ", "Also: ", "One more thing: ", "Requirements: ", "Oh, and: "]


def _compatible(cid: str, chosen: list[str], short: bool) -> bool:
    if short and cid in NOT_FOR_SHORT:
        return False
    if cid in chosen or (chosen and cid in WHOLE) or any(c in WHOLE for c in chosen):
        return False
    if (cid == REPEAT and any(c not in REPEAT_OK for c in chosen)) or (REPEAT in chosen and cid not in REPEAT_OK):
        return False
    for a, b in CONFLICTS:
        if any((cid in a and c in b) or (cid in b and c in a) for c in chosen):
            return False
    return not any(cid in members and c in members for members in GROUPS.values() for c in chosen)


def _layout(task: str, sentences: list[str], rng: random.Random) -> str:
    """The task and its constraint sentences in one of LAYOUTS."""
    if not sentences:
        return task
    gap = "\n\n" if "\n" in task else " "
    style = rng.choices([name for _, name in LAYOUTS], weights=[w for w, _ in LAYOUTS])[0]
    if style == "bullets" and len(sentences) > 1:
        return f"{task}\n\n{rng.choice(LIST_HEADERS)}\n" + "\n".join(f"- {s}" for s in sentences)
    if style == "numbered" and len(sentences) > 1:
        return f"{task}\n\n{rng.choice(LIST_HEADERS)}\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(sentences, 1))
    if style == "first":
        return rng.choice(FIRST_INTROS) + " ".join(sentences) + "\n\n" + task
    if style == "note":
        return task + gap + rng.choice(NOTE_INTROS) + " ".join(sentences)
    return task + gap + " ".join(sentences)


def heldout_phrasings(cid: str) -> list[int]:
    """Indices of the phrasings of `cid` only held-out instructions use: the last third (at least one, when the
    kind has two or more), so training sees most wordings and evaluation asks in words training never saw."""
    n = len(phrasings(cid))
    return list(range(n - max(1, n // 3), n)) if n >= 2 else []


def phrasing_choices(cid: str, split: str | None) -> list[int] | None:
    """The phrasing indices a `split` instruction may word `cid` with (None: any)."""
    held = heldout_phrasings(cid)
    if split is None or not held:
        return None
    return held if split == "heldout" else [i for i in range(len(phrasings(cid))) if i not in held]


def synthesize_one(rng: random.Random, kinds: list[str], task: SeedTask | None = None, split: str | None = None,
                   must: str | None = None) -> Instruction:
    """One instruction from `kinds`; `split` ("train"/"heldout") restricts its seed task and phrasings to that
    split's, and `must` is a kind it must hold (a held-out kind, for the unseen-kinds score)."""
    task = task or draw_task(rng, short_share=0.0 if must else 0.1, split=split)
    n_hard = rng.choices([1, 2, 3], weights=[4, 4, 2])[0]
    chosen: list[str] = [must] if must else []
    for _ in range(20):
        if len(chosen) == n_hard:
            break
        cid = rng.choice(kinds)
        if _compatible(cid, chosen, task.short):
            chosen.append(cid)
    constraints, parts = [], []  # parts: (constraint id, its sentence)
    for cid in chosen:
        kw = sample_kwargs(cid, rng, prompt=task.text)
        constraints.append({"id": cid, "kwargs": kw})
        parts.append((cid, phrase(cid, kw, rng, phrasing_choices(cid, split))))
    if rng.random() < 0.35 and not any(c in ENGLISH_ONLY | {"language:response_language"} for c in chosen):
        kind = rng.choice(sorted(SOFT))
        text = rng.choice(SOFT[kind])
        constraints.append({"id": f"soft:{kind}", "kwargs": {"text": text, "taxonomy": SOFT_TAXONOMY[kind]}})
        parts.append((f"soft:{kind}", text))
    # "repeat the request" must come last: the request it repeats is everything before it
    repeat = [t for c, t in parts if c == REPEAT]
    others = [t for c, t in parts if c != REPEAT]
    rng.shuffle(others)
    if repeat:
        body = task.text + ("\n\n" if "\n" in task.text else " ") + " ".join(others) if others else task.text
        next(c for c in constraints if c["id"] == REPEAT)["kwargs"]["prompt_to_repeat"] = body
        body = body + "\n" + repeat[0]
    else:
        body = _layout(task.text, others, rng)
    return Instruction(id="", prompt=body, constraints=constraints, source=f"synth:{task.genre}")


def synthesize(n: int, seed: int = 0, heldout: float = 0.1, kinds: list[str] | None = None,
               heldout_kinds: Sequence[str] = HELDOUT_KINDS, unseen_share: float = 0.5) -> list[Instruction]:
    """`n` distinct instructions; about `heldout` of them get split "heldout" (never trained on).

    Held out by construction: training instructions use only training seed frames (seed_tasks.heldout_frame),
    training phrasings (heldout_phrasings) and kinds outside `heldout_kinds`; held-out ones use only held-out frames
    and phrasings, and about `unseen_share` of them hold one of `heldout_kinds` (the unseen-kinds score), the rest
    only training kinds (seen kinds, unseen wording).
    """
    rng = random.Random(seed)
    kinds = sorted(kinds or REGISTRY)
    unknown = sorted(set(heldout_kinds) - set(REGISTRY))
    if unknown:
        raise UserError(f"held-out kinds {unknown} are not constraint kinds (`spar data stats` lists them)")
    train_kinds = [k for k in kinds if k not in set(heldout_kinds)]
    if not train_kinds:
        raise UserError(f"every kind of {kinds} is held out ({list(heldout_kinds)}); training needs some kinds")
    out, seen = [], set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise UserError(f"could only make {len(out)} distinct instructions of the {n} asked; ask for fewer")
        split = "heldout" if rng.random() < heldout else "train"
        must = rng.choice(sorted(heldout_kinds)) if split == "heldout" and heldout_kinds and (
            rng.random() < unseen_share) else None
        inst = synthesize_one(rng, kinds if must else train_kinds, split=split, must=must)
        key = re.sub(r"\s+", " ", inst.prompt.lower()).strip()
        if key in seen:
            continue
        seen.add(key)
        inst.id = f"s{seed}-{len(out):06d}"
        inst.split = split
        out.append(inst)
    return out


_TOKEN = re.compile(r"\w+")


def leak_check(instructions: list[Instruction], benchmark: str | Path,
               threshold: float = 0.8) -> list[tuple[str, str, float]]:
    """(instruction id, benchmark key, Jaccard) of every instruction that equals or nearly duplicates a benchmark
    prompt (`benchmark`: a JSONL file with a `prompt` per line, IFEval rows or Instruction records).

    Token-set Jaccard with a prefix filter: two sets can reach `threshold`
    only if they share a token among the rarest few of each, so most pairs
    are never compared.
    """
    from spar.data.contamination import load_prompts

    bench = [(key, set(_TOKEN.findall(prompt.lower()))) for key, prompt in load_prompts(benchmark, "benchmark file")]
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
