"""Bootstrap (the paper's SPaR-SFT): supervised fine-tuning of actor and refiner before iteration 0.

    bootstrap: {enabled: true, n: 200}                                          # teacher-free
    bootstrap: {enabled: true, teacher: {base_url: http://host:8000/v1, model: Qwen2.5-7B-Instruct}}

The paper starts self-play from models already taught to judge and refine.
The actor first answers `n` training instructions (cfg.sample: k samples
each); then:

* with a teacher (any model behind an OpenAI-compatible server, through the
  `openai` backend): the teacher writes answers (actor SFT data), judges the
  actor's answers (judge chats) and refines those it judged wrong (refine
  chats). A teacher's output is kept only where code agrees: an answer or a
  refinement must pass the instruction's verifiable constraints, a verdict
  must match the verifier's when it has something to check.
* without one (teacher-free): for a sampled answer failing verifiable
  constraints, the verifier's own critique (the judge chat's target) and a
  minimal programmatic repair that makes it pass (REPAIRS: lowercase, drop
  commas, add the ending, wrap in JSON or quotes, add a title or a
  postscript, mark sections, ...; each repair is checked by the verifier and
  an answer whose failures have no repair is skipped). The refiner learns
  short critiques and minimal edits; the actor learns the repaired answers;
  an answer that already passes teaches a "Verdict: Yes".

Both roles train with train_rft (SFT on chats, the loss on the last turn);
the loop records the stage in the manifest under "bootstrap" and starts
iteration 0 from the two checkpoints.
"""

from __future__ import annotations

import json
import random
import re
from typing import Callable, Sequence

from spar.backends.base import Backend, SamplingParams
from spar.constraints import get, is_soft, verify
from spar.constraints.lexical import MINOR_WORDS
from spar.data.phrasings import number_word
from spar.parsing import parse_refinement, parse_verdict
from spar.prompts import actor_chat
from spar.records import Instruction, RFTExample
from spar.selfplay.rft_data import judge_example, refine_example

# ---- minimal repairs, one per constraint kind ------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _groups(items: list[str], n: int) -> list[list[str]] | None:
    """`items` in `n` consecutive non-empty groups of near-equal size; None if there are fewer than n."""
    if len(items) < n:
        return None
    size, extra = divmod(len(items), n)
    out, i = [], 0
    for g in range(n):
        take = size + (g < extra)
        out.append(items[i:i + take])
        i += take
    return out


def _as_list(text: str, n: int, mark: Callable[[int], str]) -> str | None:
    """The sentences in `n` lines, line i opened by `mark(i)` (from 1); None if there are fewer than n."""
    groups = _groups(_sentences(text), n)
    return None if groups is None else "\n".join(f"{mark(i)}{' '.join(g)}" for i, g in enumerate(groups, 1))


def _title(prompt: str) -> str:
    words = re.findall(r"[A-Za-z]+", prompt)[:4] or ["Answer"]
    return " ".join(w.capitalize() for w in words)


def _no_digits(text: str) -> str:
    return re.sub(r"\d+", lambda m: number_word(int(m.group())) if int(m.group()) <= 20 else "many", text)


def _drop_words(text: str, words: Sequence[str]) -> str:
    for w in words:
        text = re.sub(rf"\b{re.escape(w)}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text)


def _truncate_words(text: str, limit: int) -> str | None:
    words = text.split()
    return None if limit < 2 else " ".join(words[:limit - 1]).rstrip(",;:") + "."


_WORD_START = re.compile(r"(?<![\w'\u2019])([a-z])")
_HEADING = re.compile(r"^(\s{0,3}#{1,6}\s+)(.*\S)\s*$", re.MULTILINE)
_REMARK = re.compile(r"\s*\([^()]*[^\W_][^()]*\)")


def _title_case(text: str, keep_minor: bool = False) -> str:
    """Every word capitalized; with `keep_minor`, as a heading: minor words (of, the, ...) after the first kept."""
    def up(m: re.Match) -> str:
        word = re.match(r"[\w'\u2019]+", text[m.start():]).group()
        minor = keep_minor and m.start() > 0 and word.casefold() in MINOR_WORDS
        return m.group(1) if minor else m.group(1).upper()

    return _WORD_START.sub(up, text)


def _per_paragraph(text: str, edit: Callable[[str], str]) -> str:
    """`edit` applied to each paragraph that needs it (the caller's check decides), blank lines kept."""
    return "\n\n".join(edit(p) for p in _paragraphs(text))


def _with_word(word: str) -> Callable[[str], str]:
    return lambda p: p if re.search(rf"\b{re.escape(word)}\b", p, re.I) else f"{p.rstrip()} {word.capitalize()} matters here."


def _ending_with(word: str) -> Callable[[str], str]:
    return lambda p: p if re.search(rf"\b{re.escape(word)}\W*$", p, re.I) else f"{p.rstrip().rstrip('.!?:;,')} {word}."


def _headings_title_case(text: str, n: int) -> str | None:
    """Existing markdown headings in Title Case; with fewer than `n`, the answer in `n` parts under headings."""
    if len(_HEADING.findall(text)) >= n:
        return _HEADING.sub(lambda m: m.group(1) + _title_case(m.group(2), keep_minor=True), text)
    return _regroup(text, n, "\n\n", "\n\n", heading="## Part {i}\n")


def _caps_run(text: str, n: int) -> str:
    """The first `n` words in capitals (the check refuses it if that joins another run of capitals)."""
    spans = [m.span() for m in re.finditer(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*", text)][:n]
    return text if len(spans) < n else text[:spans[0][0]] + text[spans[0][0]:spans[-1][1]].upper() + text[spans[-1][1]:]


def _drop(text: str, matches: list[re.Match]) -> str:
    """`text` without the spans of `matches` (the extra remarks or phrases, dropped from the end)."""
    for m in reversed(matches):
        text = text[:m.start()] + text[m.end():]
    return text


def _remarks(text: str, want: int) -> str | None:
    """Exactly `want` remarks in round brackets: extra ones dropped from the end, missing ones added to sentences."""
    found = list(_REMARK.finditer(text))
    if len(found) > want:
        return _drop(text, found[want:])
    sents = _sentences(text)
    missing = want - len(found)
    if len(sents) < missing:
        return None
    return " ".join(f"{x.rstrip('.!?')} (as noted){x[-1] if x[-1] in '.!?' else ''}" if i < missing else x
                    for i, x in enumerate(sents))


def _bullets(text: str, n: int, lead_in: bool = False) -> str | None:
    """The sentences as `n` or more bullet points ending with a period (with a bold lead-in phrase)."""
    groups = _groups(_sentences(text), n)
    if groups is None:
        return None
    items = [" ".join(g).rstrip("!?;:,") for g in groups]
    return "\n".join(f"- {'**Point ' + str(i) + ':** ' if lead_in else ''}{x if x.endswith('.') else x + '.'}"
                     for i, x in enumerate(items, 1))


def _regroup(text: str, n: int, joiner: str, inner: str = " ",
             first_word: tuple[int, str] | None = None, heading: str = "") -> str | None:
    """The answer in `n` parts joined by `joiner`: its paragraphs grouped (joined by `inner`) where it has at least
    `n`, else its sentences; `first_word` (k, word) opens part k with that word."""
    paras = _paragraphs(text)
    by_paragraph = len(paras) >= n
    groups = _groups(paras if by_paragraph else _sentences(text), n)
    if groups is None:
        return None
    parts = [(inner if by_paragraph else " ").join(g) for g in groups]
    if first_word:
        k, word = first_word
        parts[k - 1] = f"{word.capitalize()}, {parts[k - 1]}"
    return joiner.join(heading.format(i=i) + part for i, part in enumerate(parts, 1))


def _short_paragraphs(text: str, most: int) -> str:
    """Each paragraph with more than `most` sentences split into paragraphs of at most `most`."""
    out = []
    for p in _paragraphs(text):
        sents = _sentences(p)
        out.extend(" ".join(sents[i:i + most]) for i in range(0, len(sents), most))
    return "\n\n".join(out)


def _subject(text: str, prompt: str) -> str:
    lines = text.lstrip().split("\n")
    if re.match(r"^\s*[*_#]*\s*subject\s*[*_]*\s*:", lines[0], re.I):
        lines = lines[1:]  # a subject line too long: written again, short
    return f"Subject: {_title(prompt)}\n\n" + "\n".join(lines).lstrip()


def _phrase_times(text: str, phrase: str, times: int) -> str:
    found = list(re.finditer(r"[ \t]*" + re.escape(phrase), text, flags=re.IGNORECASE))
    if len(found) > times:
        return _drop(text, found[times:])
    return text.rstrip() + "".join(f" {phrase[0].upper() + phrase[1:]}." for _ in range(times - len(found)))


# kind -> repair(text, kwargs, prompt): the answer changed as little as the rule allows, or None if this answer
# cannot be repaired simply. Applied in this order (content first, case and punctuation next, wrappers last), so
# a later repair keeps what an earlier one fixed (commas dropped after keywords are added, quotes around all).
REPAIRS: dict[str, Callable[[str, dict, str], str | None]] = {
    "keywords:existence": lambda t, kw, p: t.rstrip() + " " + " ".join(
        w for w in kw["keywords"] if not re.search(rf"\b{re.escape(w)}\b", t, re.I)).capitalize() + ".",
    "keywords:frequency": lambda t, kw, p: None if kw["relation"] != "at least" else t.rstrip() + " " + " ".join(
        [kw["keyword"]] * kw["frequency"]).capitalize() + ".",
    "detectable_content:number_placeholders": lambda t, kw, p: t.rstrip() + "\n\n" + " ".join(
        f"[detail {i}]" for i in range(1, kw["num_placeholders"] + 1)),
    "detectable_content:hashtags": lambda t, kw, p: t.rstrip() + "\n\n" + " ".join(
        f"#topic{i}" for i in range(1, kw["num_hashtags"] + 1)),
    "punctuation:question_marks": lambda t, kw, p: t.rstrip() + " " + " ".join(
        ["Does that make sense?"] * kw["num_questions"]),
    "length_constraints:number_words": lambda t, kw, p: (
        _truncate_words(t, kw["num_words"]) if kw["relation"] == "less than" else None),
    "length_constraints:number_sentences": lambda t, kw, p: None if kw["relation"] != "less than" else (
        " ".join(_sentences(t)[:kw["num_sentences"] - 1]) if kw["num_sentences"] > 1 else None),
    "length_constraints:number_paragraphs": lambda t, kw, p: _regroup(t, kw["num_paragraphs"], "\n\n***\n\n",
                                                                       "\n\n"),
    "length_constraints:nth_paragraph_first_word": lambda t, kw, p: _regroup(
        t, kw["num_paragraphs"], "\n\n", "\n", (kw["nth_paragraph"], kw["first_word"])),
    "length:exact_lines": lambda t, kw, p: _regroup(re.sub(r"\s*\n\s*", " ", t), kw["num_lines"], "\n"),
    "length:sentences_per_paragraph": lambda t, kw, p: _short_paragraphs(t, kw["max_sentences"]),
    "structure:countdown_list": lambda t, kw, p: _as_list(t, kw["start"], lambda i: f"{kw['start'] + 1 - i}. "),
    "detectable_format:number_bullet_lists": lambda t, kw, p: _as_list(t, kw["num_bullets"], lambda i: "* "),
    "detectable_format:numbered_list": lambda t, kw, p: _as_list(t, kw["num_items"], lambda i: f"{i}. "),
    "structure:numbered_steps": lambda t, kw, p: _as_list(t, kw["num_steps"], lambda i: f"Step {i}: "),
    "detectable_format:multiple_sections": lambda t, kw, p: (lambda g: None if g is None else "\n\n".join(
        f"{kw['section_spliter']} {i}\n" + "\n\n".join(x) for i, x in enumerate(g, 1)))(
        _groups(_paragraphs(t), kw["num_sections"]) or _groups(_sentences(t), kw["num_sections"])),
    "detectable_format:markdown_headers": lambda t, kw, p: (lambda g: None if g is None else "\n\n".join(
        f"## Part {i}\n" + " ".join(x) for i, x in enumerate(g, 1)))(_groups(_sentences(t), kw["num_headers"])),
    "detectable_format:number_highlighted_sections": lambda t, kw, p: (lambda s: None if len(s) < kw[
        "num_highlights"] else " ".join(f"*{x}*" if i < kw["num_highlights"] else x for i, x in enumerate(s)))(
        _sentences(t.replace("*", ""))),
    "keywords:repeat_phrase": lambda t, kw, p: _phrase_times(t, kw["phrase"], kw["times"]),
    "lexical:keyword_every_paragraph": lambda t, kw, p: _per_paragraph(t, _with_word(kw["keyword"])),
    "lexical:keyword_in_first_sentence": lambda t, kw, p: f"{kw['keyword'].capitalize()}: {t.lstrip()}",
    "numeric:percentages": lambda t, kw, p: t.rstrip() + "".join(
        f" About {25 * i}% of it matters." for i in range(1, kw["num_percentages"] + 1)),
    "detectable_content:emoji_count": lambda t, kw, p: None if kw["relation"] != "at least" else (
        t.rstrip() + " " + "\U0001F642" * kw["num_emojis"]),
    "numeric:number_count": lambda t, kw, p: _no_digits(t) if kw["relation"] == "less than" else None,
    "punctuation:parentheses": lambda t, kw, p: _remarks(t, kw["num_parentheses"]),
    "length:short_opening": lambda t, kw, p: f"Here is my answer. {t.lstrip()}",
    "template:labeled_fields": lambda t, kw, p: _as_list(t, len(kw["labels"]), lambda i: f"{kw['labels'][i - 1]}: "),
    "structure:bold_lead_in": lambda t, kw, p: _bullets(t, kw["min_bullets"], lead_in=True),
    "structure:bullets_end_with_period": lambda t, kw, p: _bullets(t, kw["min_bullets"]),
    "case:heading_title_case": lambda t, kw, p: _headings_title_case(t, kw["min_headings"]),
    "sentence:paragraph_last_word": lambda t, kw, p: _per_paragraph(t, _ending_with(kw["word"])),
    "keywords:forbidden_words": lambda t, kw, p: _drop_words(t, kw["forbidden_words"]),
    "numeric:no_digits": lambda t, kw, p: _no_digits(t),
    "charset:ascii_only": lambda t, kw, p: t.encode("ascii", "ignore").decode(),
    "punctuation:no_exclamation": lambda t, kw, p: t.replace("!", "."),
    "punctuation:no_dashes": lambda t, kw, p: re.sub(r"\s*[-\u2010-\u2015]+\s*", " ", t),
    "punctuation:no_comma": lambda t, kw, p: t.replace(",", ""),
    "change_case:english_lowercase": lambda t, kw, p: t.lower(),
    "change_case:english_capital": lambda t, kw, p: t.upper(),
    "change_case:title_case": lambda t, kw, p: _title_case(t),
    "case:caps_run": lambda t, kw, p: _caps_run(t, kw["run_length"]),
    "detectable_content:postscript": lambda t, kw, p: f"{t.rstrip()}\n\n{kw['postscript_marker']} Thanks for reading.",
    "sentence:ends_with_question": lambda t, kw, p: t.rstrip() + "\n\nWhat do you think?",
    "startend:first_word": lambda t, kw, p: f"{kw['first_word'].capitalize()}: {t.lstrip()}",
    "startend:last_word": lambda t, kw, p: f"{t.rstrip().rstrip('.!?')} {kw['last_word']}.",
    "startend:end_checker": lambda t, kw, p: f"{t.rstrip()}\n{kw['end_phrase']}",
    "detectable_format:title": lambda t, kw, p: f"<<{_title(p)}>>\n\n{t.lstrip()}",
    "combination:repeat_prompt": lambda t, kw, p: f"{kw['prompt_to_repeat']}\n\n{t.lstrip()}",
    "template:subject_line": lambda t, kw, p: _subject(t, p),
    "structure:code_block": lambda t, kw, p: f"```{kw['language']}\n{t.strip()}\n```",
    "startend:quotation": lambda t, kw, p: '"' + t.strip().strip('"') + '"',
    "detectable_format:json_format": lambda t, kw, p: json.dumps({"response": t.strip()}, ensure_ascii=False),
}
ORDER = {cid: i for i, cid in enumerate(REPAIRS)}


def repair(response: str, constraints: list[dict], prompt: str = "") -> str | None:
    """A minimal edit of `response` that passes every verifiable constraint, or None.

    Each failed constraint is repaired in REPAIRS order and the repair must make it pass; the result must pass
    all of them together (a repair may break another rule: then there is no simple repair)."""
    hard = [c for c in constraints if not is_soft(c["id"])]
    failed = set(verify(response, hard).failed)
    if not failed:
        return None
    if any(cid not in REPAIRS for cid in failed):
        return None
    text = response
    for c in sorted((c for c in hard if c["id"] in failed), key=lambda c: ORDER[c["id"]]):
        kwargs = get(c["id"]).validate(c.get("kwargs"))
        fixed = REPAIRS[c["id"]](text, kwargs, prompt)
        if fixed is None or not get(c["id"]).check(fixed, kwargs):
            return None
        text = fixed
    return text if verify(text, hard).passed else None


def critique(result_feedback: str) -> str:
    """The verifier's findings as a judge's short critique ending in the verdict line."""
    return f"Requirements not met:\n{result_feedback}\nVerdict: No"


YES_CRITIQUE = "The response meets every requirement.\nVerdict: Yes"


# ---- building the data -------------------------------------------------------------------------------------


def sample_answers(instructions: Sequence[Instruction], actor: Backend, params: SamplingParams) -> list[list[str]]:
    outs = actor.generate([actor_chat(i.prompt) for i in instructions], params)
    return [[c.text for c in row] for row in outs]


def teacher_free_data(instructions: Sequence[Instruction], answers: Sequence[Sequence[str]], hybrid: bool,
                      prefill: bool, counts: dict | None = None,
                      per_instruction: int = 1) -> tuple[list[RFTExample], list[RFTExample]]:
    """(actor examples, refiner examples) from code alone: per instruction the first `per_instruction` distinct
    failing answers with a repair (judge "No" with the verifier's critique, the refine chat, the repaired answer
    for the actor) and the first passing one (judge "Yes", when every constraint is checkable)."""
    counts = counts if counts is not None else {}
    actor, refiner = [], []
    for inst, texts in zip(instructions, answers):
        hard = [c for c in inst.constraints if not is_soft(c["id"])]
        if not hard:
            continue
        fixed, passed_one = 0, False
        for text in dict.fromkeys(texts):  # distinct answers, in order
            result = verify(text, hard)
            if result.passed and not passed_one and len(hard) == len(inst.constraints):
                refiner.append(judge_example(inst, text, YES_CRITIQUE, "yes", "bootstrap", hybrid))
                passed_one = True
            elif not result.passed and fixed < per_instruction:
                repaired = repair(text, inst.constraints, inst.prompt)
                if repaired is None:
                    counts["no_repair"] = counts.get("no_repair", 0) + 1
                    continue
                said = critique(result.feedback)
                refiner.append(judge_example(inst, text, said, "no", "bootstrap", hybrid))
                reasoning = "Fix only what fails: " + "; ".join(line.lstrip("- ") for line in
                                                               result.feedback.splitlines()) + "."
                refiner.append(refine_example(inst, {"response": text, "critique": said},
                                              {"response": repaired, "reasoning": reasoning}, prefill))
                actor.append(RFTExample(actor_chat(inst.prompt) + [{"role": "assistant", "content": repaired}],
                                        "answer", "bootstrap-repair"))
                fixed += 1
    return actor, refiner


def teacher_data(instructions: Sequence[Instruction], answers: Sequence[Sequence[str]], teacher: Backend,
                 max_new_tokens: int, hybrid: bool, prefill: bool,
                 counts: dict | None = None) -> tuple[list[RFTExample], list[RFTExample]]:
    """(actor examples, refiner examples) written by `teacher`: its answers to the instructions, its judgments of
    the first sampled answer of each, and its refinement of those it judged wrong; each kept only where code agrees
    (see the module docstring)."""
    from spar.judge import judge_request
    from spar.prompts import refine_chat

    counts = counts if counts is not None else {}
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    hard = [[c for c in i.constraints if not is_soft(c["id"])] for i in instructions]

    actor = []
    for inst, rules, row in zip(instructions, hard, teacher.generate([actor_chat(i.prompt) for i in instructions],
                                                                      params)):
        if verify(row[0].text, rules).passed:
            actor.append(RFTExample(actor_chat(inst.prompt) + [{"role": "assistant", "content": row[0].text}],
                                    "answer", "bootstrap-teacher"))
        else:
            counts["answer_failed"] = counts.get("answer_failed", 0) + 1

    judged = [(inst, rules, texts[0]) for inst, rules, texts in zip(instructions, hard, answers) if texts]
    verdicts = teacher.generate([judge_request(inst, text, hybrid) for inst, _, text in judged], params)
    refiner, to_refine = [], []
    for (inst, rules, text), row in zip(judged, verdicts):
        said = row[0].text
        verdict = parse_verdict(said)
        if verdict not in ("yes", "no") or (rules and (verdict == "yes") != verify(text, rules).passed):
            counts["judgment_disagrees"] = counts.get("judgment_disagrees", 0) + 1
            continue
        refiner.append(judge_example(inst, text, said, verdict, "bootstrap-teacher", hybrid))
        if verdict == "no":
            to_refine.append((inst, rules, text, said))

    # the teacher writes its reflection and markers itself; the example is stored in the format the refiner is
    # asked in during the search (prefilled or not)
    outs = teacher.generate([refine_chat(inst.prompt, text, said) for inst, _, text, said in to_refine], params)
    for (inst, rules, text, said), row in zip(to_refine, outs):
        refined = parse_refinement(row[0].text)
        if refined is None or not refined.response.strip() or not verify(refined.response, rules).passed:
            counts["refinement_failed"] = counts.get("refinement_failed", 0) + 1
            continue
        refiner.append(refine_example(inst, {"response": text, "critique": said},
                                      {"response": refined.response, "reasoning": refined.reasoning}, prefill))
    return actor, refiner


def pick(instructions: Sequence[Instruction], n: int, seed: int) -> list[Instruction]:
    """The `n` training instructions the bootstrap uses (all when there are fewer), seeded."""
    items = list(instructions)
    return items if n >= len(items) else random.Random(f"bootstrap-{seed}").sample(items, n)
