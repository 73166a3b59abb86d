"""IFEval's 25 verifiable instructions (Zhou et al., 2023), with the official semantics.

Ids, kwarg names and the checks follow google-research's
`instruction_following_eval`, quirks included: paragraphs are split on
`***` (and, for `nth_paragraph_first_word`, on blank lines), the section
kwarg is spelled `section_spliter`, relations are "less than" (strictly
fewer) and "at least", keywords are regular expressions matched without
case, and a text langdetect cannot classify passes the language checks.
"""

from __future__ import annotations

import collections
import json
import re

from spar.constraints.base import Constraint, register
from spar.constraints.text import count_sentences, count_words, detect_language, word_tokenize

RELATIONS = ["less than", "at least"]
LANGUAGES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi", "fr": "French",
    "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian", "bn": "Bengali", "uk": "Ukrainian",
    "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu", "bg": "Bulgarian", "ko": "Korean", "pl": "Polish",
    "he": "Hebrew", "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili", "kn": "Kannada",
    "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
}
KEYWORDS = [
    "river", "light", "future", "market", "garden", "memory", "signal", "balance", "journey", "window",
    "energy", "village", "pattern", "history", "silence", "science", "harvest", "network", "freedom", "ocean",
    "mountain", "engine", "lesson", "promise", "shadow", "budget", "season", "letter", "bridge", "customer",
]
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def compare(actual: int, relation: str, target: int) -> bool:
    return actual < target if relation == "less than" else actual >= target


def relation_text(relation: str, target: int, unit: str) -> str:
    return f"{'fewer than' if relation == 'less than' else 'at least'} {target} {unit}"


def _times(relation: str, target: int) -> str:
    return relation_text(relation, target, "times")


# ---- keywords --------------------------------------------------------------


@register
class KeywordExistence(Constraint):
    id, taxonomy, params = "keywords:existence", "Content/keyword", {"keywords": list}

    def describe(self, kw):
        return f"Include the keywords {', '.join(kw['keywords'])} in the response."

    def evaluate(self, response, kw):
        missing = [k for k in kw["keywords"] if not re.search(k, response, flags=re.IGNORECASE)]
        return not missing, f"the keyword(s) {', '.join(repr(k) for k in missing)} do not appear"

    def sample_kwargs(self, rng, prompt=""):
        return {"keywords": rng.sample(KEYWORDS, rng.randint(1, 3))}


@register
class KeywordFrequency(Constraint):
    id, taxonomy = "keywords:frequency", "Content/keyword"
    params = {"keyword": str, "frequency": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"In your response, the word {kw['keyword']} should appear {_times(kw['relation'], kw['frequency'])}."

    def evaluate(self, response, kw):
        n = len(re.findall(kw["keyword"].strip(), response, flags=re.IGNORECASE))
        return (compare(n, kw["relation"], kw["frequency"]),
                f"{kw['keyword']!r} appears {n} times; it must appear {_times(kw['relation'], kw['frequency'])}")

    def sample_kwargs(self, rng, prompt=""):
        return {"keyword": rng.choice(KEYWORDS), "frequency": rng.randint(1, 4), "relation": rng.choice(RELATIONS)}


@register
class ForbiddenWords(Constraint):
    id, taxonomy, params = "keywords:forbidden_words", "Content/keyword", {"forbidden_words": list}

    def describe(self, kw):
        return f"Do not include the keywords {', '.join(kw['forbidden_words'])} in the response."

    def evaluate(self, response, kw):
        found = [w for w in kw["forbidden_words"] if re.search(r"\b" + w + r"\b", response, flags=re.IGNORECASE)]
        return not found, f"the forbidden word(s) {', '.join(repr(w) for w in found)} appear"

    def sample_kwargs(self, rng, prompt=""):
        words = KEYWORDS + ["very", "really", "thing", "good", "nice"]
        return {"forbidden_words": rng.sample(words, rng.randint(1, 3))}


@register
class LetterFrequency(Constraint):
    id, taxonomy = "keywords:letter_frequency", "Format/character format"
    params = {"letter": str, "let_frequency": int, "let_relation": RELATIONS}

    def describe(self, kw):
        return (f"In your response, the letter {kw['letter']} should appear "
                f"{_times(kw['let_relation'], kw['let_frequency'])}.")

    def evaluate(self, response, kw):
        n = collections.Counter(response.lower())[kw["letter"].strip().lower()]
        return (compare(n, kw["let_relation"], kw["let_frequency"]),
                f"the letter {kw['letter']!r} appears {n} times; it must appear "
                f"{_times(kw['let_relation'], kw['let_frequency'])}")

    def sample_kwargs(self, rng, prompt=""):
        return {"letter": rng.choice("abcdefghijklmnopqrstuvwxyz"), "let_frequency": rng.randint(1, 12),
                "let_relation": rng.choice(RELATIONS)}


# ---- language ----------------------------------------------------------------


@register
class ResponseLanguage(Constraint):
    id, taxonomy, params = "language:response_language", "General/language", {"language": str}

    def describe(self, kw):
        name = LANGUAGES.get(kw["language"], kw["language"])
        return f"Your ENTIRE response should be in {name} language, no other language is allowed."

    def evaluate(self, response, kw):
        detected = detect_language(response)  # None: langdetect cannot tell, which passes as in IFEval
        wanted = LANGUAGES.get(kw["language"], kw["language"])
        return (detected is None or detected == kw["language"],
                f"the response is in {LANGUAGES.get(detected, detected)}, not {wanted}")

    def sample_kwargs(self, rng, prompt=""):
        return {"language": rng.choice(["es", "fr", "de", "it", "pt"])}


# ---- length ------------------------------------------------------------------


@register
class NumberSentences(Constraint):
    id, taxonomy = "length_constraints:number_sentences", "Format/length"
    params = {"num_sentences": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"Your response should contain {relation_text(kw['relation'], kw['num_sentences'], 'sentences')}."

    def evaluate(self, response, kw):
        n = count_sentences(response)
        return (compare(n, kw["relation"], kw["num_sentences"]),
                f"it has {n} sentences; it needs {relation_text(kw['relation'], kw['num_sentences'], 'sentences')}")

    def sample_kwargs(self, rng, prompt=""):
        return {"num_sentences": rng.randint(2, 8), "relation": rng.choice(RELATIONS)}


def split_star_paragraphs(response: str) -> list[str]:
    return re.split(r"\s?\*\*\*\s?", response)


@register
class NumberParagraphs(Constraint):
    id, taxonomy, params = "length_constraints:number_paragraphs", "Format/length", {"num_paragraphs": int}

    def _count(self, response):
        """Paragraphs separated by ***; None when an inner paragraph is empty."""
        paragraphs = split_star_paragraphs(response)
        count = len(paragraphs)
        for i, p in enumerate(paragraphs):
            if not p.strip():
                if i in (0, len(paragraphs) - 1):
                    count -= 1
                else:
                    return None
        return count

    def describe(self, kw):
        return (f"There should be {kw['num_paragraphs']} paragraphs. "
                "Paragraphs are separated with the markdown divider: ***")

    def evaluate(self, response, kw):
        n = self._count(response)
        if n is None:
            return False, "there is an empty paragraph between two *** dividers"
        want = kw["num_paragraphs"]
        return n == want, f"it has {n} paragraphs separated by ***; it needs exactly {want}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_paragraphs": rng.randint(2, 5)}


@register
class NumberWords(Constraint):
    id, taxonomy = "length_constraints:number_words", "Format/length"
    params = {"num_words": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"Answer with {relation_text(kw['relation'], kw['num_words'], 'words')}."

    def evaluate(self, response, kw):
        n = count_words(response)
        return (compare(n, kw["relation"], kw["num_words"]),
                f"it has {n} words; it needs {relation_text(kw['relation'], kw['num_words'], 'words')}")

    def sample_kwargs(self, rng, prompt=""):
        relation = rng.choice(RELATIONS)
        choices = [40, 50, 60, 80, 100, 120] if relation == "less than" else [10, 20, 30, 50]
        return {"num_words": rng.choice(choices), "relation": relation}


@register
class NthParagraphFirstWord(Constraint):
    id, taxonomy = "length_constraints:nth_paragraph_first_word", "Content/sentence"
    params = {"num_paragraphs": int, "nth_paragraph": int, "first_word": str}

    def _parse(self, response, kw):
        """(paragraph count, first word of the nth paragraph or None)."""
        paragraphs = re.split(r"\n\n", response)
        count = sum(1 for p in paragraphs if p.strip())
        if kw["nth_paragraph"] > count:
            return count, None
        paragraph = paragraphs[kw["nth_paragraph"] - 1].strip()
        if not paragraph:
            return count, None
        word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for ch in word:
            if ch in {".", ",", "?", "!", "'", '"'}:
                break
            first += ch.lower()
        return count, first

    def describe(self, kw):
        return (f"There should be {kw['num_paragraphs']} paragraphs. Paragraphs and only paragraphs are separated "
                f"with each other by two new lines as if it was '\\n\\n' in python. Paragraph {kw['nth_paragraph']} "
                f"must start with word {kw['first_word']}.")

    def evaluate(self, response, kw):
        count, first = self._parse(response, kw)
        ok = first is not None and count == kw["num_paragraphs"] and first == kw["first_word"].lower()
        parts = []
        if count != kw["num_paragraphs"]:
            parts.append(f"it has {count} paragraphs (separated by blank lines), not {kw['num_paragraphs']}")
        if first != kw["first_word"].lower():
            parts.append(f"paragraph {kw['nth_paragraph']} starts with {first!r}, not {kw['first_word']!r}" if first
                         else f"there is no paragraph {kw['nth_paragraph']}")
        return ok, "; ".join(parts)

    def sample_kwargs(self, rng, prompt=""):
        n = rng.randint(2, 4)
        return {"num_paragraphs": n, "nth_paragraph": rng.randint(1, n), "first_word": rng.choice(KEYWORDS)}


# ---- detectable content ------------------------------------------------------------


@register
class NumberPlaceholders(Constraint):
    id, taxonomy, params = "detectable_content:number_placeholders", "Content/symbol", {"num_placeholders": int}

    def describe(self, kw):
        return (f"The response must contain at least {kw['num_placeholders']} placeholders represented by square "
                "brackets, such as [address].")

    def evaluate(self, response, kw):
        n = len(re.findall(r"\[.*?\]", response))
        return n >= kw["num_placeholders"], f"it has {n} [placeholders]; it needs at least {kw['num_placeholders']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_placeholders": rng.randint(1, 4)}


@register
class Postscript(Constraint):
    id, taxonomy, params = "detectable_content:postscript", "Format/template", {"postscript_marker": str}

    def describe(self, kw):
        return ("At the end of your response, please explicitly add a postscript starting with "
                f"{kw['postscript_marker']}")

    def evaluate(self, response, kw):
        marker = kw["postscript_marker"].strip()
        if marker == "P.P.S":
            pattern = r"\s*p\.\s?p\.\s?s.*$"
        elif marker == "P.S.":
            pattern = r"\s*p\.\s?s\..*$"
        else:
            pattern = r"\s*" + marker.lower() + r".*$"
        return (bool(re.findall(pattern, response.lower(), flags=re.MULTILINE)),
                f"there is no postscript starting with {kw['postscript_marker']}")

    def sample_kwargs(self, rng, prompt=""):
        return {"postscript_marker": rng.choice(["P.S.", "P.P.S"])}


# ---- detectable format ---------------------------------------------------------------


def _bullets(response: str) -> int:
    star = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dash = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(star) + len(dash)


@register
class NumberBulletLists(Constraint):
    id, taxonomy, params = "detectable_format:number_bullet_lists", "Format/text format", {"num_bullets": int}

    def describe(self, kw):
        return (f"Your answer must contain exactly {kw['num_bullets']} bullet points. Use the markdown bullet points "
                "such as:\n* This is point 1.\n* This is point 2")

    def evaluate(self, response, kw):
        n = _bullets(response)
        return n == kw["num_bullets"], f"it has {n} bullet points; it needs exactly {kw['num_bullets']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_bullets": rng.randint(2, 6)}


@register
class ConstrainedResponse(Constraint):
    id, taxonomy, params = "detectable_format:constrained_response", "Format/template", {}

    def describe(self, kw):
        return f"Answer with one of the following options: {CONSTRAINED_RESPONSES}"

    def evaluate(self, response, kw):
        return (any(option in response.strip() for option in CONSTRAINED_RESPONSES),
                f"it does not contain one of the exact options {', '.join(map(repr, CONSTRAINED_RESPONSES))}")

    def sample_kwargs(self, rng, prompt=""):
        return {}


def _highlights(response: str) -> int:
    n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip())
    n += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h.removeprefix("**").removesuffix("**").strip())
    return n


@register
class NumberHighlightedSections(Constraint):
    id, taxonomy = "detectable_format:number_highlighted_sections", "Format/text format"
    params = {"num_highlights": int}

    def describe(self, kw):
        return (f"Highlight at least {kw['num_highlights']} sections in your answer with markdown, "
                "i.e. *highlighted section*.")

    def evaluate(self, response, kw):
        n = _highlights(response)
        return n >= kw["num_highlights"], f"it has {n} *highlighted* sections; it needs at least {kw['num_highlights']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_highlights": rng.randint(1, 4)}


@register
class MultipleSections(Constraint):
    id, taxonomy = "detectable_format:multiple_sections", "Format/text format"
    params = {"section_spliter": str, "num_sections": int}

    def describe(self, kw):
        s = kw["section_spliter"]
        return (f"Your response must have {kw['num_sections']} sections. Mark the beginning of each section with "
                f"{s} X, such as:\n{s} 1\n[content of section 1]\n{s} 2\n[content of section 2]")

    def evaluate(self, response, kw):
        n = len(re.split(r"\s?" + kw["section_spliter"].strip() + r"\s?\d+\s?", response)) - 1
        return (n >= kw["num_sections"],
                f"it has {n} sections marked '{kw['section_spliter']} X'; it needs {kw['num_sections']}")

    def sample_kwargs(self, rng, prompt=""):
        return {"section_spliter": rng.choice(["Section", "SECTION", "Part", "PARAGRAPH"]),
                "num_sections": rng.randint(2, 5)}


def strip_json_fence(response: str) -> str:
    return (response.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
            .removeprefix("```").removesuffix("```").strip())


@register
class JsonFormat(Constraint):
    id, taxonomy, params = "detectable_format:json_format", "Format/text format", {}

    def describe(self, kw):
        return "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```."

    def evaluate(self, response, kw):
        try:
            json.loads(strip_json_fence(response))
        except ValueError:
            return False, "the whole response is not valid JSON"
        return True, None

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class Title(Constraint):
    id, taxonomy, params = "detectable_format:title", "Format/template", {}

    def describe(self, kw):
        return "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."

    def evaluate(self, response, kw):
        return (any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response)),
                "there is no title wrapped in double angular brackets like <<title>>")

    def sample_kwargs(self, rng, prompt=""):
        return {}


# ---- combination -----------------------------------------------------------------


@register
class TwoResponses(Constraint):
    id, taxonomy, params = "combination:two_responses", "Format/template", {}

    def _valid(self, response):
        """The non-empty parts between ******, or None when an inner part is empty."""
        parts = response.split("******")
        valid = []
        for i, part in enumerate(parts):
            if not part.strip():
                if i not in (0, len(parts) - 1):
                    return None
            else:
                valid.append(part)
        return valid

    def describe(self, kw):
        return ("Give two different responses. Responses and only responses should be separated by 6 asterisk "
                "symbols: ******.")

    def evaluate(self, response, kw):
        valid = self._valid(response)
        if valid is not None and len(valid) == 2:
            return valid[0].strip() != valid[1].strip(), "the two responses separated by ****** are identical"
        found = len(valid) if valid is not None else "an empty part"
        return False, f"it needs exactly two different responses separated by ******; found {found}"

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class RepeatPrompt(Constraint):
    id, taxonomy, params = "combination:repeat_prompt", "Content/sentence", {"prompt_to_repeat": str}

    def describe(self, kw):
        return ("First repeat the request word for word without change, then give your answer (1. do not say any words "
                "or characters before repeating the request; 2. the request you need to repeat does not include this "
                "sentence)")

    def evaluate(self, response, kw):
        return (response.strip().lower().startswith(kw["prompt_to_repeat"].strip().lower()),
                f"it does not start by repeating the request word for word: {kw['prompt_to_repeat'][:80]!r}")

    def sample_kwargs(self, rng, prompt=""):
        """The request to repeat is the task itself: pass it as `prompt`."""
        return {"prompt_to_repeat": prompt or "Write a short note."}


# ---- start / end -----------------------------------------------------------------


@register
class EndChecker(Constraint):
    id, taxonomy, params = "startend:end_checker", "Content/sentence", {"end_phrase": str}

    def describe(self, kw):
        return (f"Finish your response with this exact phrase {kw['end_phrase']}. "
                "No other words should follow this phrase.")

    def evaluate(self, response, kw):
        return (response.strip().strip('"').lower().endswith(kw["end_phrase"].strip().lower()),
                f"it does not end with the exact phrase {kw['end_phrase']!r}")

    def sample_kwargs(self, rng, prompt=""):
        return {"end_phrase": rng.choice(["Any other questions?", "Is there anything else I can help with?",
                                          "Let me know if you have additional questions.", "That is all."])}


@register
class Quotation(Constraint):
    id, taxonomy, params = "startend:quotation", "Format/punctuation", {}

    def describe(self, kw):
        return "Wrap your entire response with double quotation marks."

    def evaluate(self, response, kw):
        r = response.strip()
        wrapped = len(r) > 1 and r[0] == '"' and r[-1] == '"'
        return wrapped, "the whole response is not wrapped in double quotation marks"

    def sample_kwargs(self, rng, prompt=""):
        return {}


# ---- case -----------------------------------------------------------------------


@register
class CapitalWordFrequency(Constraint):
    id, taxonomy = "change_case:capital_word_frequency", "Format/character format"
    params = {"capital_frequency": int, "capital_relation": RELATIONS}

    def describe(self, kw):
        return (f"In your response, words with all capital letters should appear "
                f"{relation_text(kw['capital_relation'], kw['capital_frequency'], 'times')}.")

    def evaluate(self, response, kw):
        n = sum(1 for w in word_tokenize(response) if w.isupper())
        need = relation_text(kw["capital_relation"], kw["capital_frequency"], "").rstrip()
        ok = compare(n, kw["capital_relation"], kw["capital_frequency"])
        return ok, f"it has {n} all-capital words; it needs {need}"

    def sample_kwargs(self, rng, prompt=""):
        return {"capital_frequency": rng.randint(1, 10), "capital_relation": rng.choice(RELATIONS)}


@register
class EnglishCapital(Constraint):
    id, taxonomy, params = "change_case:english_capital", "Format/character format", {}

    def describe(self, kw):
        return "Your entire response should be in English, and in all capital letters."

    def evaluate(self, response, kw):
        if not response.isupper():
            return False, "not all letters are capitals"
        return detect_language(response) in ("en", None), "the response is not in English"

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class EnglishLowercase(Constraint):
    id, taxonomy, params = "change_case:english_lowercase", "Format/character format", {}

    def describe(self, kw):
        return ("Your entire response should be in English, and in all lowercase letters. "
                "No capital letters are allowed.")

    def evaluate(self, response, kw):
        if not response.islower():
            return False, "it contains capital letters"
        return detect_language(response) in ("en", None), "the response is not in English"

    def sample_kwargs(self, rng, prompt=""):
        return {}


# ---- punctuation ------------------------------------------------------------------


@register
class NoComma(Constraint):
    id, taxonomy, params = "punctuation:no_comma", "Format/punctuation", {}

    def describe(self, kw):
        return "In your entire response, refrain from the use of any commas."

    def evaluate(self, response, kw):
        return "," not in response, f"it contains {response.count(',')} comma(s)"

    def sample_kwargs(self, rng, prompt=""):
        return {}


IFEVAL_IDS: tuple[str, ...] = tuple(
    c.id for c in Constraint.__subclasses__() if c.__module__ == __name__
)
