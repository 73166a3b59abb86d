"""Reading model text: the judge's verdict and the refiner's refined response.

The only place with regular expressions over model output. Neither parser
raises: an unreadable verdict is "invalid", an unreadable refinement None.
Every parser runs in time linear in the text: whitespace runs are collapsed
with str.split before any pattern sees a line, and the patterns hold no two
quantifiers that can match the same characters, so no input backtracks
(a judge output of "Verdict" and 100,000 spaces once took minutes).

Verdict rule (strict; the judge prompt asks for a final line "Verdict: Yes"
or "Verdict: No", see spar.prompts.JUDGE_TEMPLATE):

1. Markdown emphasis (`* _ ` # >`), list bullets and case are ignored.
2. A verdict line *starts* with a label: "Verdict", "Final verdict",
   "Overall verdict", "Judgment"/"Judgement" (also "Final ..."), "Final
   answer" or "Final decision", optionally after "The"/"My", then "is"
   and/or a separator (":", "-", "=", a dash). "Verdict Yes" without
   either is not a verdict line.
3. The verdict is the first word after the label: "yes" or "no" (quotes or
   brackets around it allowed), then the end of the line or a non-letter
   ("Verdict: No, it misses the title." is "no"; "Verdict: Nope" is
   invalid). A label with nothing after it takes the first word of the next
   non-empty line ("**Verdict:**" / "No").
4. The last verdict line decides; if its word is not yes/no, the vote is
   invalid (the judge's final word was neither).
5. Without any verdict line, a final line that is only "Yes" or "No" (with
   emphasis or punctuation) counts; anything else is invalid.

Words in critique prose never count: "the answer is no longer than 100
words" or "So: no." is not a verdict, wherever it stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The refine prompt (spar/prompts.py) asks for the refined response between these.
REFINED_START = "<refined>"
REFINED_END = "</refined>"

# Deleted before matching: markdown emphasis and heading/quote markers.
_EMPHASIS = str.maketrans("", "", "*_`#>")
# Every pattern below runs on one line whose whitespace runs are single spaces, anchored at its start.
_LABEL = re.compile(
    r"(?:(?:the|my) )?"
    r"(?:(?:final|overall) )?(?:verdict|judge?ment)"
    r"|(?:(?:the|my) )?final (?:answer|decision)"
)
_SEPARATOR = re.compile(r" ?(?:is ?)?[:=\-\u2013\u2014]+ ?| is ?")
_ANSWER = re.compile(r"[\"'(\[]*(yes|no)(?![a-z0-9])")
_BARE = re.compile(r"[\"'(\[]*(yes|no)[\"')\].!]*")
_BULLET = re.compile(r"(?:[-+\u2022] |\d{1,3}[.)] )")


def _normal(line: str) -> str:
    """A line without emphasis, in lower case, its whitespace runs collapsed to single spaces."""
    line = " ".join(line.translate(_EMPHASIS).lower().split())
    bullet = _BULLET.match(line)
    return line[bullet.end():] if bullet else line


def _labelled(line: str) -> str | None:
    """What follows a verdict label and its separator on a verdict line; None if `line` is no verdict line."""
    label = _LABEL.match(line)
    if not label:
        return None
    sep = _SEPARATOR.match(line, label.end())
    return line[sep.end():] if sep else None


def parse_verdict(text: str) -> str:
    """"yes", "no" or "invalid" (the rule is in the module docstring)."""
    if not isinstance(text, str):
        return "invalid"
    lines = [n for n in (_normal(line) for line in text.splitlines()) if n]
    for i in range(len(lines) - 1, -1, -1):
        rest = _labelled(lines[i])
        if rest is None:
            continue
        if not rest and i + 1 < len(lines):  # "Verdict:" alone, the word on the next line
            rest = lines[i + 1]
        answer = _ANSWER.match(rest)
        return answer.group(1) if answer else "invalid"
    bare = _BARE.fullmatch(lines[-1]) if lines else None
    return bare.group(1) if bare else "invalid"


@dataclass
class Refinement:
    reasoning: str
    response: str


def parse_refinement(text: str) -> Refinement | None:
    """The text after the last start marker (up to the end marker, if any); None without one."""
    if not isinstance(text, str):
        return None
    start = text.rfind(REFINED_START)
    if start < 0:
        return None
    body = text[start + len(REFINED_START):]
    end = body.find(REFINED_END)
    if end >= 0:
        body = body[:end]
    body = body.strip()
    if not body:
        return None
    return Refinement(reasoning=text[:start].strip(), response=body)


_PREFERENCE = re.compile(r"\b(?:better|answer|choice) ?(?:is ?)?(?:[:=\-\u2013\u2014] ?|is )(?:response ?)?([ab])\b")


def parse_preference(text: str) -> int | None:
    """1 for "Better: A", 2 for "Better: B" (the last one wins), None when absent or unreadable.

    A label ("Better", "Answer", "Choice") needs a separator or "is": "the answer a user wants" is prose.
    """
    if not isinstance(text, str):
        return None
    found = _PREFERENCE.findall(" ".join(text.translate(_EMPHASIS).lower().split()))
    return {"a": 1, "b": 2}[found[-1]] if found else None


def parse_marked(text: str, tag: str) -> str | None:
    """Text between <tag> and </tag> (end tag optional); None when absent, empty or "None"."""
    if not isinstance(text, str):
        return None
    start = text.rfind(f"<{tag}>")
    if start < 0:
        return None
    body = text[start + len(tag) + 2:]
    end = body.find(f"</{tag}>")
    body = (body[:end] if end >= 0 else body).strip()
    return None if not body or body.strip(" .*").lower() == "none" else body


# how FollowBench reads the items of a judge's list: YES is met; these, and NO, are not
_UNMET_WORDS = ("no", "partial", "partially", "maybe", "unknown", "unclear", "n/a", "na")


def parse_yes_no_list(text: str, count: int) -> list[bool] | None:
    """The last bracketed list of YES/NO items in `text` ("[YES, NO]", quotes and emphasis allowed), as one
    boolean per item; None without such a list or when it has another length than `count`. PARTIAL, MAYBE,
    UNKNOWN, UNCLEAR and N/A count as NO, as FollowBench reads them; a list holding any other word is skipped
    (it is prose or a heading, e.g. "[Rewrite 2]"), and the one before it is read.

    Linear time: the search moves left from bracket to bracket and never scans a character twice.
    """
    if not isinstance(text, str):
        return None
    end = text.rfind("]")
    while end >= 0:
        start = text.rfind("[", 0, end)
        if start < 0:
            return None
        items = [" ".join(i.translate(_EMPHASIS).split()).strip("'\". ").lower()
                 for i in text[start + 1:end].split(",")]
        if all(i == "yes" or i in _UNMET_WORDS for i in items):
            return [i == "yes" for i in items] if len(items) == count else None
        end = text.rfind("]", 0, start)
    return None
