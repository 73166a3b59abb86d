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


def _fails(ok: bool, reason: str) -> str | None:
    return None if ok else reason


# ---- keywords --------------------------------------------------------------


@register
class KeywordExistence(Constraint):
    id, taxonomy, params = "keywords:existence", "Content/keyword", {"keywords": list}

    def describe(self, kw):
        return f"Include the keywords {', '.join(kw['keywords'])} in the response."

    def check(self, response, kw):
        return all(re.search(k, response, flags=re.IGNORECASE) for k in kw["keywords"])

    def explain(self, response, kw):
        missing = [k for k in kw["keywords"] if not re.search(k, response, flags=re.IGNORECASE)]
        return _fails(not missing, f"the keyword(s) {', '.join(repr(k) for k in missing)} do not appear")

    def sample_kwargs(self, rng, prompt=""):
        return {"keywords": rng.sample(KEYWORDS, rng.randint(1, 3))}


@register
class KeywordFrequency(Constraint):
    id, taxonomy = "keywords:frequency", "Content/keyword"
    params = {"keyword": str, "frequency": int, "relation": RELATIONS}

    def _count(self, response, kw):
        return len(re.findall(kw["keyword"].strip(), response, flags=re.IGNORECASE))

    def describe(self, kw):
        return f"In your response, the word {kw['keyword']} should appear {relation_text(kw['relation'], kw['frequency'], 'times')}."

    def check(self, response, kw):
        return compare(self._count(response, kw), kw["relation"], kw["frequency"])

    def explain(self, response, kw):
        n = self._count(response, kw)
        return _fails(self.check(response, kw), f"{kw['keyword']!r} appears {n} times; it must appear {relation_text(kw['relation'], kw['frequency'], 'times')}")

    def sample_kwargs(self, rng, prompt=""):
        return {"keyword": rng.choice(KEYWORDS), "frequency": rng.randint(1, 4), "relation": rng.choice(RELATIONS)}


@register
class ForbiddenWords(Constraint):
    id, taxonomy, params = "keywords:forbidden_words", "Content/keyword", {"forbidden_words": list}

    def _found(self, response, kw):
        return [w for w in kw["forbidden_words"] if re.search(r"\b" + w + r"\b", response, flags=re.IGNORECASE)]

    def describe(self, kw):
        return f"Do not include the keywords {', '.join(kw['forbidden_words'])} in the response."

    def check(self, response, kw):
        return not self._found(response, kw)

    def explain(self, response, kw):
        found = self._found(response, kw)
        return _fails(not found, f"the forbidden word(s) {', '.join(repr(w) for w in found)} appear")

    def sample_kwargs(self, rng, prompt=""):
        return {"forbidden_words": rng.sample(KEYWORDS + ["very", "really", "thing", "good", "nice"], rng.randint(1, 3))}


@register
class LetterFrequency(Constraint):
    id, taxonomy = "keywords:letter_frequency", "Format/character format"
    params = {"letter": str, "let_frequency": int, "let_relation": RELATIONS}

    def _count(self, response, kw):
        return collections.Counter(response.lower())[kw["letter"].strip().lower()]

    def describe(self, kw):
        return f"In your response, the letter {kw['letter']} should appear {relation_text(kw['let_relation'], kw['let_frequency'], 'times')}."

    def check(self, response, kw):
        return compare(self._count(response, kw), kw["let_relation"], kw["let_frequency"])

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"the letter {kw['letter']!r} appears {self._count(response, kw)} times; "
                      f"it must appear {relation_text(kw['let_relation'], kw['let_frequency'], 'times')}")

    def sample_kwargs(self, rng, prompt=""):
        return {"letter": rng.choice("abcdefghijklmnopqrstuvwxyz"), "let_frequency": rng.randint(1, 12), "let_relation": rng.choice(RELATIONS)}


# ---- language ----------------------------------------------------------------


@register
class ResponseLanguage(Constraint):
    id, taxonomy, params = "language:response_language", "General/language", {"language": str}

    def describe(self, kw):
        name = LANGUAGES.get(kw["language"], kw["language"])
        return f"Your ENTIRE response should be in {name} language, no other language is allowed."

    def check(self, response, kw):
        detected = detect_language(response)
        return detected is None or detected == kw["language"]

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"the response is in {LANGUAGES.get(detect_language(response), detect_language(response))}, "
                      f"not {LANGUAGES.get(kw['language'], kw['language'])}")

    def sample_kwargs(self, rng, prompt=""):
        return {"language": rng.choice(["es", "fr", "de", "it", "pt"])}


# ---- length ------------------------------------------------------------------


@register
class NumberSentences(Constraint):
    id, taxonomy = "length_constraints:number_sentences", "Format/length"
    params = {"num_sentences": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"Your response should contain {relation_text(kw['relation'], kw['num_sentences'], 'sentences')}."

    def check(self, response, kw):
        return compare(count_sentences(response), kw["relation"], kw["num_sentences"])

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it has {count_sentences(response)} sentences; it needs "
                      f"{relation_text(kw['relation'], kw['num_sentences'], 'sentences')}")

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

    def check(self, response, kw):
        return self._count(response) == kw["num_paragraphs"]

    def explain(self, response, kw):
        n = self._count(response)
        if n is None:
            return "there is an empty paragraph between two *** dividers"
        return _fails(n == kw["num_paragraphs"], f"it has {n} paragraphs separated by ***; it needs exactly {kw['num_paragraphs']}")

    def sample_kwargs(self, rng, prompt=""):
        return {"num_paragraphs": rng.randint(2, 5)}


@register
class NumberWords(Constraint):
    id, taxonomy = "length_constraints:number_words", "Format/length"
    params = {"num_words": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"Answer with {relation_text(kw['relation'], kw['num_words'], 'words')}."

    def check(self, response, kw):
        return compare(count_words(response), kw["relation"], kw["num_words"])

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it has {count_words(response)} words; it needs {relation_text(kw['relation'], kw['num_words'], 'words')}")

    def sample_kwargs(self, rng, prompt=""):
        relation = rng.choice(RELATIONS)
        return {"num_words": rng.choice([40, 50, 60, 80, 100, 120]) if relation == "less than" else rng.choice([10, 20, 30, 50]),
                "relation": relation}


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
        return (f"There should be {kw['num_paragraphs']} paragraphs. Paragraphs and only paragraphs are separated with "
                f"each other by two new lines as if it was '\\n\\n' in python. Paragraph {kw['nth_paragraph']} must start "
                f"with word {kw['first_word']}.")

    def check(self, response, kw):
        count, first = self._parse(response, kw)
        return first is not None and count == kw["num_paragraphs"] and first == kw["first_word"].lower()

    def explain(self, response, kw):
        if self.check(response, kw):
            return None
        count, first = self._parse(response, kw)
        parts = []
        if count != kw["num_paragraphs"]:
            parts.append(f"it has {count} paragraphs (separated by blank lines), not {kw['num_paragraphs']}")
        if first != kw["first_word"].lower():
            parts.append(f"paragraph {kw['nth_paragraph']} starts with {first!r}, not {kw['first_word']!r}" if first
                         else f"there is no paragraph {kw['nth_paragraph']}")
        return "; ".join(parts)

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

    def _count(self, response):
        return len(re.findall(r"\[.*?\]", response))

    def check(self, response, kw):
        return self._count(response) >= kw["num_placeholders"]

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it has {self._count(response)} [placeholders]; it needs at least {kw['num_placeholders']}")

    def sample_kwargs(self, rng, prompt=""):
        return {"num_placeholders": rng.randint(1, 4)}


@register
class Postscript(Constraint):
    id, taxonomy, params = "detectable_content:postscript", "Format/template", {"postscript_marker": str}

    def describe(self, kw):
        return f"At the end of your response, please explicitly add a postscript starting with {kw['postscript_marker']}"

    def check(self, response, kw):
        marker = kw["postscript_marker"].strip()
        if marker == "P.P.S":
            pattern = r"\s*p\.\s?p\.\s?s.*$"
        elif marker == "P.S.":
            pattern = r"\s*p\.\s?s\..*$"
        else:
            pattern = r"\s*" + marker.lower() + r".*$"
        return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"there is no postscript starting with {kw['postscript_marker']}")

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

    def check(self, response, kw):
        return _bullets(response) == kw["num_bullets"]

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it has {_bullets(response)} bullet points; it needs exactly {kw['num_bullets']}")

    def sample_kwargs(self, rng, prompt=""):
        return {"num_bullets": rng.randint(2, 6)}


@register
class ConstrainedResponse(Constraint):
    id, taxonomy, params = "detectable_format:constrained_response", "Format/template", {}

    def describe(self, kw):
        return "Answer with one of the following options: ('My answer is yes.', 'My answer is no.', 'My answer is maybe.')"

    def check(self, response, kw):
        return any(option in response.strip() for option in CONSTRAINED_RESPONSES)

    def explain(self, response, kw):
        return _fails(self.check(response, kw), "it does not contain one of the exact options 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'")

    def sample_kwargs(self, rng, prompt=""):
        return {}


def _highlights(response: str) -> int:
    n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip())
    n += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h.removeprefix("**").removesuffix("**").strip())
    return n


@register
class NumberHighlightedSections(Constraint):
    id, taxonomy, params = "detectable_format:number_highlighted_sections", "Format/text format", {"num_highlights": int}

    def describe(self, kw):
        return f"Highlight at least {kw['num_highlights']} sections in your answer with markdown, i.e. *highlighted section*."

    def check(self, response, kw):
        return _highlights(response) >= kw["num_highlights"]

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it has {_highlights(response)} *highlighted* sections; it needs at least {kw['num_highlights']}")

    def sample_kwargs(self, rng, prompt=""):
        return {"num_highlights": rng.randint(1, 4)}


@register
class MultipleSections(Constraint):
    id, taxonomy = "detectable_format:multiple_sections", "Format/text format"
    params = {"section_spliter": str, "num_sections": int}

    def _count(self, response, kw):
        return len(re.split(r"\s?" + kw["section_spliter"].strip() + r"\s?\d+\s?", response)) - 1

    def describe(self, kw):
        s = kw["section_spliter"]
        return (f"Your response must have {kw['num_sections']} sections. Mark the beginning of each section with {s} X, "
                f"such as:\n{s} 1\n[content of section 1]\n{s} 2\n[content of section 2]")

    def check(self, response, kw):
        return self._count(response, kw) >= kw["num_sections"]

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it has {self._count(response, kw)} sections marked '{kw['section_spliter']} X'; it needs {kw['num_sections']}")

    def sample_kwargs(self, rng, prompt=""):
        return {"section_spliter": rng.choice(["Section", "SECTION", "Part", "PARAGRAPH"]), "num_sections": rng.randint(2, 5)}


def strip_json_fence(response: str) -> str:
    return (response.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
            .removeprefix("```").removesuffix("```").strip())


@register
class JsonFormat(Constraint):
    id, taxonomy, params = "detectable_format:json_format", "Format/text format", {}

    def describe(self, kw):
        return "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```."

    def check(self, response, kw):
        try:
            json.loads(strip_json_fence(response))
        except ValueError:
            return False
        return True

    def explain(self, response, kw):
        return _fails(self.check(response, kw), "the whole response is not valid JSON")

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class Title(Constraint):
    id, taxonomy, params = "detectable_format:title", "Format/template", {}

    def describe(self, kw):
        return "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."

    def check(self, response, kw):
        return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))

    def explain(self, response, kw):
        return _fails(self.check(response, kw), "there is no title wrapped in double angular brackets like <<title>>")

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
        return "Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******."

    def check(self, response, kw):
        valid = self._valid(response)
        return valid is not None and len(valid) == 2 and valid[0].strip() != valid[1].strip()

    def explain(self, response, kw):
        if self.check(response, kw):
            return None
        valid = self._valid(response)
        if valid is not None and len(valid) == 2:
            return "the two responses separated by ****** are identical"
        return f"it needs exactly two different responses separated by ******; found {len(valid) if valid is not None else 'an empty part'}"

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class RepeatPrompt(Constraint):
    id, taxonomy, params = "combination:repeat_prompt", "Content/sentence", {"prompt_to_repeat": str}

    def describe(self, kw):
        return ("First repeat the request word for word without change, then give your answer (1. do not say any words "
                "or characters before repeating the request; 2. the request you need to repeat does not include this sentence)")

    def check(self, response, kw):
        return response.strip().lower().startswith(kw["prompt_to_repeat"].strip().lower())

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it does not start by repeating the request word for word: {kw['prompt_to_repeat'][:80]!r}")

    def sample_kwargs(self, rng, prompt=""):
        """The request to repeat is the task itself: pass it as `prompt`."""
        return {"prompt_to_repeat": prompt or "Write a short note."}


# ---- start / end -----------------------------------------------------------------


@register
class EndChecker(Constraint):
    id, taxonomy, params = "startend:end_checker", "Content/sentence", {"end_phrase": str}

    def describe(self, kw):
        return f"Finish your response with this exact phrase {kw['end_phrase']}. No other words should follow this phrase."

    def check(self, response, kw):
        return response.strip().strip('"').lower().endswith(kw["end_phrase"].strip().lower())

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it does not end with the exact phrase {kw['end_phrase']!r}")

    def sample_kwargs(self, rng, prompt=""):
        return {"end_phrase": rng.choice(["Any other questions?", "Is there anything else I can help with?",
                                          "Let me know if you have additional questions.", "That is all."])}


@register
class Quotation(Constraint):
    id, taxonomy, params = "startend:quotation", "Format/punctuation", {}

    def describe(self, kw):
        return "Wrap your entire response with double quotation marks."

    def check(self, response, kw):
        r = response.strip()
        return len(r) > 1 and r[0] == '"' and r[-1] == '"'

    def explain(self, response, kw):
        return _fails(self.check(response, kw), "the whole response is not wrapped in double quotation marks")

    def sample_kwargs(self, rng, prompt=""):
        return {}


# ---- case -----------------------------------------------------------------------


@register
class CapitalWordFrequency(Constraint):
    id, taxonomy = "change_case:capital_word_frequency", "Format/character format"
    params = {"capital_frequency": int, "capital_relation": RELATIONS}

    def _count(self, response):
        return sum(1 for w in word_tokenize(response) if w.isupper())

    def describe(self, kw):
        return (f"In your response, words with all capital letters should appear "
                f"{relation_text(kw['capital_relation'], kw['capital_frequency'], 'times')}.")

    def check(self, response, kw):
        return compare(self._count(response), kw["capital_relation"], kw["capital_frequency"])

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it has {self._count(response)} all-capital words; it needs "
                      f"{relation_text(kw['capital_relation'], kw['capital_frequency'], '')}".rstrip())

    def sample_kwargs(self, rng, prompt=""):
        return {"capital_frequency": rng.randint(1, 10), "capital_relation": rng.choice(RELATIONS)}


@register
class EnglishCapital(Constraint):
    id, taxonomy, params = "change_case:english_capital", "Format/character format", {}

    def describe(self, kw):
        return "Your entire response should be in English, and in all capital letters."

    def check(self, response, kw):
        return response.isupper() and detect_language(response) in ("en", None)

    def explain(self, response, kw):
        if self.check(response, kw):
            return None
        return "not all letters are capitals" if not response.isupper() else "the response is not in English"

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class EnglishLowercase(Constraint):
    id, taxonomy, params = "change_case:english_lowercase", "Format/character format", {}

    def describe(self, kw):
        return "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed."

    def check(self, response, kw):
        return response.islower() and detect_language(response) in ("en", None)

    def explain(self, response, kw):
        if self.check(response, kw):
            return None
        return "it contains capital letters" if not response.islower() else "the response is not in English"

    def sample_kwargs(self, rng, prompt=""):
        return {}


# ---- punctuation ------------------------------------------------------------------


@register
class NoComma(Constraint):
    id, taxonomy, params = "punctuation:no_comma", "Format/punctuation", {}

    def describe(self, kw):
        return "In your entire response, refrain from the use of any commas."

    def check(self, response, kw):
        return "," not in response

    def explain(self, response, kw):
        return _fails(self.check(response, kw), f"it contains {response.count(',')} comma(s)")

    def sample_kwargs(self, rng, prompt=""):
        return {}


IFEVAL_IDS: tuple[str, ...] = tuple(
    c.id for c in Constraint.__subclasses__() if c.__module__ == __name__
)
