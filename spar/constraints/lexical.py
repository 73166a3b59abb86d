"""Verifiable constraints on words, sentences, letters, punctuation, dates and citations.

The second half of the kinds added for issue 12 (structure.py holds the
layout ones, and the reading rules both share: paragraphs, lines, a line
break ending a sentence, markdown marks ignored). Each kind computes one
`problem()`, None when the response passes (structure.Checked), from
which `evaluate`, `check` and `explain` all follow.
"""

from __future__ import annotations

import calendar
import datetime
import re

from spar.constraints.base import register
from spar.constraints.ifeval_kinds import KEYWORDS
from spar.constraints.structure import (
    Checked, lines, normalize, paragraphs, plain, quote, sentences, words, _BREAK, _EMPHASIS, _SEPARATOR,
)

_LETTERS = re.compile(r"[^\W\d_]+")


def _first_alnum(text: str) -> str:
    return next((c for c in text if c.isalnum()), "")


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", _EMPHASIS.sub("", text), re.IGNORECASE) is not None


# ---- words ---------------------------------------------------------------------


@register
class MaxWordLength(Checked):
    id, taxonomy, params = "length:max_word_length", "Format/length", {"max_letters": int}

    def describe(self, kw):
        return f"Stick to short words: none of them may be longer than {kw['max_letters']} letters."

    def problem(self, response, kw):
        long = sorted({w for w in _LETTERS.findall(response) if len(w) > kw["max_letters"]}, key=lambda w: (-len(w), w))
        if not long:
            return None
        shown = ", ".join(f"{w!r} ({len(w)})" for w in long[:3])
        return f"these words are longer than {kw['max_letters']} letters: {shown}"

    def sample_kwargs(self, rng, prompt=""):
        return {"max_letters": rng.randint(8, 12)}


@register
class NoRepeatedWord(Checked):
    id, taxonomy, params = "lexical:no_repeated_word", "Content/keyword", {"min_letters": int}

    def describe(self, kw):
        return f"Never use the same word twice if it has {kw['min_letters']} or more letters."

    def problem(self, response, kw):
        counts: dict[str, int] = {}
        for w in _LETTERS.findall(response):
            if len(w) >= kw["min_letters"]:
                counts[w.casefold()] = counts.get(w.casefold(), 0) + 1
        repeated = [(w, n) for w, n in counts.items() if n > 1]
        if not repeated:
            return None
        shown = ", ".join(f"{w!r} ({n} times)" for w, n in repeated[:3])
        return f"words of {kw['min_letters']}+ letters are repeated: {shown}"

    def sample_kwargs(self, rng, prompt=""):
        return {"min_letters": rng.randint(5, 7)}


@register
class KeywordEveryParagraph(Checked):
    id, taxonomy, params = "lexical:keyword_every_paragraph", "Content/keyword", {"keyword": str}

    def describe(self, kw):
        return f"Mention the word '{kw['keyword']}' in every paragraph."

    def problem(self, response, kw):
        paras = paragraphs(response)
        if not paras:
            return "the response is empty"
        missing = [i for i, p in enumerate(paras, 1) if not _has_word(p, kw["keyword"])]
        if not missing:
            return None
        where = f"paragraph {missing[0]}" if len(missing) == 1 else f"paragraphs {', '.join(map(str, missing))}"
        return f"{where} of {len(paras)} do not mention {kw['keyword']!r}"

    def sample_kwargs(self, rng, prompt=""):
        return {"keyword": rng.choice(KEYWORDS)}


@register
class KeywordInFirstSentence(Checked):
    id, taxonomy, params = "lexical:keyword_in_first_sentence", "Content/keyword", {"keyword": str}

    def describe(self, kw):
        return f"Use the word '{kw['keyword']}' already in your first sentence."

    def problem(self, response, kw):
        first = sentences(response)[:1]
        if not first:
            return "the response is empty"
        if _has_word(first[0], kw["keyword"]):
            return None
        return f"the first sentence {quote(first[0])} lacks {kw['keyword']!r}"

    def sample_kwargs(self, rng, prompt=""):
        return {"keyword": rng.choice(KEYWORDS)}


# ---- sentences -----------------------------------------------------------------


@register
class ShortOpening(Checked):
    id, taxonomy, params = "length:short_opening", "Format/length", {"max_words": int}

    def describe(self, kw):
        return f"Lead with a short first sentence of no more than {kw['max_words']} words."

    def problem(self, response, kw):
        first = sentences(response)[:1]
        if not first:
            return "the response is empty"
        n = len(words(first[0]))
        return None if n <= kw["max_words"] else f"the first sentence has {n} words; at most {kw['max_words']} allowed"

    def sample_kwargs(self, rng, prompt=""):
        return {"max_words": rng.randint(6, 15)}


@register
class SentenceStartLetter(Checked):
    id, taxonomy, params = "sentence:start_letter", "Content/sentence", {"letter": str}

    def describe(self, kw):
        return f"Begin every single sentence with a word starting with the letter {kw['letter'].upper()}."

    def problem(self, response, kw):
        found = sentences(response)
        if not found:
            return "the response is empty"
        for i, s in enumerate(found, 1):
            first = _first_alnum(s)
            if first.casefold() != kw["letter"].casefold():
                want = kw["letter"].upper()
                return f"sentence {i} ({quote(s)}) starts with {first!r}; every sentence must start with {want!r}"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"letter": rng.choice("bcdfhlmprstw")}


@register
class ParagraphLastWord(Checked):
    id, taxonomy, params = "sentence:paragraph_last_word", "Content/sentence", {"word": str}

    def describe(self, kw):
        return f"Close every paragraph with the word '{kw['word']}'."

    def problem(self, response, kw):
        paras = paragraphs(response)
        if not paras:
            return "the response is empty"
        for i, p in enumerate(paras, 1):
            last = (words(p) or [""])[-1]
            if last.casefold() != kw["word"].casefold():
                return f"paragraph {i} ends with {last!r}; every paragraph must end with {kw['word']!r}"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"word": rng.choice(["again", "now", "together", "today", "onward", "enough", "always"])}


_CLOSERS = "*_~`\"'\u201d\u2019)]\u00bb "


@register
class EndsWithQuestion(Checked):
    id, taxonomy, params = "sentence:ends_with_question", "Content/sentence", {}

    def describe(self, kw):
        return "Finish with a question to the reader: the last sentence must end in a question mark."

    def problem(self, response, kw):
        tail = normalize(response).rstrip().rstrip(_CLOSERS)
        if tail.endswith(("?", "\uff1f")):
            return None
        return f"it ends with {quote(tail[-40:]) if tail else 'nothing'}, not with a question mark"

    def sample_kwargs(self, rng, prompt=""):
        return {}


ACROSTIC_WORDS = ["HOPE", "RAIN", "STAR", "CALM", "BLOOM", "LIGHT", "SPRING", "OCEAN", "TRUST", "DREAM", "RIVER"]


@register
class Acrostic(Checked):
    id, taxonomy, params = "sentence:acrostic", "Content/sentence", {"word": str}

    def describe(self, kw):
        w = kw["word"]
        return f"Write exactly {len(w)} lines and nothing else, so that their first letters spell {w.upper()}."

    def problem(self, response, kw):
        want = "".join(c for c in kw["word"].casefold() if c.isalnum())
        texts = [plain(line) for line in lines(response)]
        got = "".join(_first_alnum(t) for t in texts).casefold()
        if len(texts) != len(want):
            return f"it has {len(texts)} lines; spelling {kw['word'].upper()} needs exactly {len(want)}"
        if got != want:
            return f"the first letters of the lines spell {got.upper() or 'nothing'}, not {kw['word'].upper()}"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"word": rng.choice(ACROSTIC_WORDS)}


# ---- letters and characters ------------------------------------------------------


def _is_caps(word: str) -> bool:
    return word.upper() == word and word.lower() != word


@register
class CapsRun(Checked):
    id, taxonomy, params = "case:caps_run", "Format/character format", {"run_length": int}

    def describe(self, kw):
        n = kw["run_length"]
        return (f"Somewhere, write {n} words in a row in CAPITAL LETTERS, and never more than {n} "
                "capitalized words in a row.")

    def problem(self, response, kw):
        best, run = [], []
        for w in words(response):
            run = run + [w] if _is_caps(w) else []
            if len(run) > len(best):
                best = run
        if len(best) == kw["run_length"]:
            return None
        shown = f" ({quote(' '.join(best))})" if best else ""
        n = kw["run_length"]
        return f"its longest run of words in capitals has {len(best)} words{shown}; it must be exactly {n}"

    def sample_kwargs(self, rng, prompt=""):
        return {"run_length": rng.randint(2, 5)}


# Title Case leaves these lowercase inside a heading (either case passes; style guides differ).
MINOR_WORDS = frozenset("a an the and but or nor for so yet as at by in of off on per to up via vs from into onto with "
                        "over".split())


@register
class HeadingTitleCase(Checked):
    id, taxonomy, params = "case:heading_title_case", "Format/character format", {"min_headings": int}

    def describe(self, kw):
        return (f"Use at least {kw['min_headings']} markdown headings (# ...) and write each one in Title Case, "
                "as in '## How the Engine Works'.")

    def problem(self, response, kw):
        heads = [m.group(1) for m in (re.match(r"^\s{0,3}#{1,6}\s+(.*\S)", line) for line in lines(response)) if m]
        if len(heads) < kw["min_headings"]:
            return f"it has {len(heads)} markdown headings; it needs at least {kw['min_headings']}"
        for i, head in enumerate(heads, 1):
            ws = words(head)
            low = [w for n, w in enumerate(ws) if w[0].islower() and (n == 0 or w.casefold() not in MINOR_WORDS)]
            if low:
                return f"heading {i} ({quote(head)}) is not in Title Case: capitalize {', '.join(map(repr, low[:4]))}"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"min_headings": rng.randint(1, 4)}


@register
class AsciiOnly(Checked):
    id, taxonomy, params = "charset:ascii_only", "Format/character format", {}

    def describe(self, kw):
        return "Type only plain ASCII characters: no curly quotes, long dashes, accented letters or emoji."

    def problem(self, response, kw):
        bad = sorted({c for c in response if ord(c) > 127})
        if not bad:
            return None
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in bad[:4])
        return f"it contains {len(bad)} kind(s) of non-ASCII characters: {shown}; replace them with ASCII"

    def sample_kwargs(self, rng, prompt=""):
        return {}


# ---- punctuation -------------------------------------------------------------------


@register
class NoDashes(Checked):
    id, taxonomy, params = "punctuation:no_dashes", "Format/punctuation", {}

    def describe(self, kw):
        return ("Do not use dashes between words or clauses (no \u2014, \u2013, -- or a spaced -); "
                "hyphenated words are fine.")

    def problem(self, response, kw):
        for i, line in enumerate(normalize(response).split("\n"), 1):
            if _BREAK.match(line) or (_SEPARATOR.match(line.strip()) and "|" in line):
                continue
            body = re.sub(r"^\s*[-*+]\s+", "", line)
            m = re.search(r"\u2014|\u2013|--|\s-\s|\s-$", body)
            if m:
                dash = m.group().strip()
                return f"line {i} uses a dash ({dash!r} in {quote(body)}); use a comma, colon or parentheses"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class Parentheses(Checked):
    id, taxonomy, params = "punctuation:parentheses", "Format/punctuation", {"num_parentheses": int}

    def describe(self, kw):
        n = kw["num_parentheses"]
        return f"Add exactly {n} side remark{'s' if n != 1 else ''} in round brackets (like this one)."

    def problem(self, response, kw):
        text = "\n".join(plain(line) for line in lines(response))  # a "1)" list marker is no remark
        n = len([m for m in re.findall(r"\(([^()]*)\)", text) if re.search(r"[^\W_]", m)])
        want = kw["num_parentheses"]
        return None if n == want else f"it has {n} remarks in parentheses; it needs exactly {want}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_parentheses": rng.randint(1, 4)}


# ---- dates and citations ------------------------------------------------------------

_MONTHS = "|".join(calendar.month_name[1:])
_MONTH_ABBR = "|".join(calendar.month_abbr[1:])
DATE_FORMATS = {  # name -> (regex with groups, order of the groups as y/m/d)
    "YYYY-MM-DD": (r"(\d{4})-(\d{2})-(\d{2})", "ymd"),
    "DD/MM/YYYY": (r"(\d{2})/(\d{2})/(\d{4})", "dmy"),
    "Month D, YYYY": (rf"({_MONTHS}) (\d{{1,2}}), (\d{{4}})", "mdy"),
}
EXAMPLES = {"YYYY-MM-DD": "2024-03-09", "DD/MM/YYYY": "09/03/2024", "Month D, YYYY": "March 9, 2024"}
_ANY_DATE = re.compile(
    r"(?<![\w/.-])(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(?![\d/-]|\.\d)"
    rf"|\b(?:{_MONTHS}|{_MONTH_ABBR})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)? (?:of )?(?:{_MONTHS}|{_MONTH_ABBR})\.?,? \d{{4}}\b"
)


def _real_date(text: str, fmt: str) -> bool:
    pattern, order = DATE_FORMATS[fmt]
    m = re.fullmatch(pattern, text)
    if not m:
        return False
    parts = dict(zip(order, m.groups()))
    month = list(calendar.month_name).index(parts["m"]) if not parts["m"].isdigit() else int(parts["m"])
    try:
        datetime.date(int(parts["y"]), month, int(parts["d"]))
    except ValueError:
        return False
    return True


@register
class DateFormat(Checked):
    id, taxonomy, params = "numeric:date_format", "Format/numeric format", {"date_format": list(DATE_FORMATS)}

    def describe(self, kw):
        fmt = kw["date_format"]
        return f"Mention at least one date, and write every date as {fmt} (for example {EXAMPLES[fmt]})."

    def problem(self, response, kw):
        fmt = kw["date_format"]
        dates = [m.group() for m in _ANY_DATE.finditer(normalize(response))]
        if not dates:
            return f"it mentions no date; write at least one as {fmt}, e.g. {EXAMPLES[fmt]}"
        for d in dates:
            if not re.fullmatch(DATE_FORMATS[fmt][0], d):
                return f"the date {d!r} is not written as {fmt}; write it like {EXAMPLES[fmt]}"
            if not _real_date(d, fmt):
                return f"{d!r} is not a real calendar date"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"date_format": rng.choice(list(DATE_FORMATS))}


_REF_LINE = re.compile(r"^\s*(?:[-*+]\s+|\d{1,3}[.)]\s+)?[*_]*\[(\d{1,3})\][*_]*[:.]?\s*\S")


@register
class Citations(Checked):
    id, taxonomy, params = "symbol:citations", "Content/symbol", {"num_sources": int}

    def describe(self, kw):
        return (f"Support the answer with at least {kw['num_sources']} numbered citations such as [1] and [2] in the "
                "text, then end with a source list whose lines start [1], [2], ...")

    def problem(self, response, kw):
        rows = lines(response)
        refs = {int(m.group(1)): i for i, m in ((i, _REF_LINE.match(r)) for i, r in enumerate(rows)) if m}
        cited: dict[int, int] = {}
        for i, row in enumerate(rows):
            if _REF_LINE.match(row):
                continue
            for n in re.findall(r"\[(\d{1,3})\]", row):
                cited.setdefault(int(n), i)
        if len(cited) < kw["num_sources"]:
            return f"the text cites {len(cited)} distinct sources like [1]; it needs at least {kw['num_sources']}"
        if sorted(cited) != list(range(1, len(cited) + 1)):
            return f"the citations are numbered {sorted(cited)}; number them 1 to {len(cited)} without gaps"
        missing = [n for n in sorted(cited) if n not in refs]
        if missing:
            return f"no source line starts with [{missing[0]}]; end with one line per cited source"
        late = [n for n, i in cited.items() if i > min(refs.values())]
        if late:
            return f"citation [{late[0]}] appears after the source list starts; the list must come last"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"num_sources": rng.randint(1, 4)}


LEXICAL_IDS: tuple[str, ...] = tuple(c.id for c in Checked.__subclasses__() if c.__module__ == __name__)
