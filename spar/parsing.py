"""Reading model text: the judge's verdict and the refiner's refined response.

The only place with regular expressions over model output. Neither parser
raises: an unreadable verdict is "invalid", an unreadable refinement None.

Verdict rule: markdown emphasis is ignored; a labelled verdict ("Verdict:
Yes", "Final answer - no", "Judgment: **No**") wins, the last one if there
are several; without a label, the last whole-word "yes" or "no" on the last
non-empty line is read. "Not", "None" or "nowhere" never count as "no".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The refine prompt (spar/prompts.py) asks for the refined response between these.
REFINED_START = "<refined>"
REFINED_END = "</refined>"

_EMPHASIS = re.compile(r"[*_`#>]+")
_LABELLED = re.compile(
    r"\b(?:final\s+)?(?:verdict|answer|judg(?:e)?ment|decision|conclusion)\b\s*(?:is)?\s*[:\-=]?\s*[\"'(\[]*\s*\b(yes|no)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_verdict(text: str) -> str:
    """"yes", "no" or "invalid"."""
    if not isinstance(text, str):
        return "invalid"
    clean = _EMPHASIS.sub("", text)
    labelled = _LABELLED.findall(clean)
    if labelled:
        return labelled[-1].lower()
    lines = [line for line in clean.splitlines() if line.strip()]
    if not lines:
        return "invalid"
    words = _WORD.findall(lines[-1])
    return words[-1].lower() if words else "invalid"


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


_PREFERENCE = re.compile(r"\b(?:better|answer|choice)\s*[:\-]?\s*(?:response\s*)?\b([AB])\b", re.IGNORECASE)


def parse_preference(text: str) -> int | None:
    """1 for "Better: A", 2 for "Better: B" (the last one wins), None when absent."""
    if not isinstance(text, str):
        return None
    found = _PREFERENCE.findall(_EMPHASIS.sub("", text))
    return {"A": 1, "B": 2}[found[-1].upper()] if found else None


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
