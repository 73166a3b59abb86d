"""Verifiable constraints on a response's layout: paragraphs, lines, lists, tables, steps and fill-in templates.

Kinds that IFEval and extra.py do not have, so that training covers more
than IFEval's 25 (issue 12). Each kind computes one `problem()`: None when
the response passes, else a short reason that names the place and the
number ("paragraph 2 has 41 words; each paragraph needs 10 to 30"), which
the refiner gets as feedback; `evaluate` (and so `check` and `explain`)
comes from it.

Shared reading rules (also used by lexical.py): Windows newlines count as
newlines; paragraphs are blocks split by blank lines or by a `***`, `---`
or `___` line; a line break ends a sentence (a bullet is its own
sentence; a heading is neither a sentence nor a paragraph); list markers,
`>` and markdown emphasis are ignored when reading words and first letters.
"""

from __future__ import annotations

import re

from spar.constraints.base import Constraint, register
from spar.constraints.text import count_words, split_sentences

_BREAK = re.compile(r"^[ \t]*(?:\*{3,}|-{3,}|_{3,})[ \t]*$", re.MULTILINE)
_LEAD = re.compile(r"^\s*(?:(?:#{1,6}|>)\s*|[-*+\u2022]\s+|\d{1,3}[.)]\s+)*")
_EMPHASIS = re.compile(r"[*_`~]+")
WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_BULLET = re.compile(r"^\s*[-*+\u2022]\s+(.*\S)\s*$")
_NUMBERED = re.compile(r"^\s*(\d{1,3})[.)]\s+(.*\S)\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s|$)")


class Checked(Constraint):
    """A kind whose reason alone says whether it passed: `problem()` is None when the response passes."""

    def problem(self, response: str, kw: dict) -> str | None:
        raise NotImplementedError

    def evaluate(self, response, kw):
        reason = self.problem(response, kw)
        return reason is None, reason


def normalize(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def lines(text: str) -> list[str]:
    """The non-blank lines, without trailing whitespace."""
    return [line.rstrip() for line in normalize(text).split("\n") if line.strip()]


def plain(line: str) -> str:
    """A line without its list marker, heading or quote mark and emphasis: the words a reader sees."""
    return _EMPHASIS.sub("", _LEAD.sub("", line, count=1)).strip()


def is_heading(line: str) -> bool:
    return _HEADING.match(line) is not None


def paragraphs(text: str) -> list[str]:
    """Blocks between blank or `***` lines; a block of headings alone is a title, not a paragraph."""
    blocks = re.split(r"\n[ \t]*\n", _BREAK.sub("\n\n", normalize(text)))
    return [b.strip() for b in blocks if b.strip() and not all(map(is_heading, lines(b)))]


def sentences(text: str) -> list[str]:
    """Sentences outside headings, a line break ending one; only those with a letter or digit."""
    out = []
    for line in lines(text):
        if not is_heading(line):
            out += [s for s in split_sentences(plain(line)) if WORD.search(s)]
    return out


def words(text: str) -> list[str]:
    return WORD.findall(_EMPHASIS.sub(" ", normalize(text)))


def quote(text: str, limit: int = 40) -> str:
    """A short quotation of `text` for an explanation."""
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def ordinal_list(values: list) -> str:
    return ", ".join(str(v) for v in values)


# ---- lengths per part -------------------------------------------------------


@register
class WordsPerParagraph(Checked):
    id, taxonomy, params = "length:words_per_paragraph", "Format/length", {"min_words": int, "max_words": int}

    def describe(self, kw):
        return f"Keep each paragraph between {kw['min_words']} and {kw['max_words']} words long."

    def problem(self, response, kw):
        paras = paragraphs(response)
        if not paras:
            return "the response is empty"
        for i, p in enumerate(paras, 1):
            n = count_words(p)
            if not kw["min_words"] <= n <= kw["max_words"]:
                return f"paragraph {i} has {n} words; each paragraph needs {kw['min_words']} to {kw['max_words']}"
        return None

    def sample_kwargs(self, rng, prompt=""):
        low = rng.choice([10, 15, 20, 30])
        return {"min_words": low, "max_words": low + rng.choice([20, 30, 40])}


@register
class SentencesPerParagraph(Checked):
    id, taxonomy, params = "length:sentences_per_paragraph", "Format/length", {"max_sentences": int}

    def describe(self, kw):
        return f"No paragraph may contain more than {kw['max_sentences']} sentences."

    def problem(self, response, kw):
        paras = paragraphs(response)
        if not paras:
            return "the response is empty"
        for i, p in enumerate(paras, 1):
            n = len(sentences(p))
            if n > kw["max_sentences"]:
                return f"paragraph {i} has {n} sentences; at most {kw['max_sentences']} allowed per paragraph"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"max_sentences": rng.randint(2, 4)}


@register
class ExactLines(Checked):
    id, taxonomy, params = "length:exact_lines", "Format/length", {"num_lines": int}

    def describe(self, kw):
        return f"Your reply must be exactly {kw['num_lines']} non-empty lines long."

    def problem(self, response, kw):
        n = len(lines(response))
        return None if n == kw["num_lines"] else f"it has {n} non-empty lines; it needs exactly {kw['num_lines']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_lines": rng.randint(3, 8)}


# ---- lists and steps ------------------------------------------------------------


def list_items(text: str) -> list[str]:
    """The text of every bullet (-, *, +, •) or numbered (1. / 1)) item, in order, without emphasis."""
    items = []
    for line in lines(text):
        m = _BULLET.match(line) or _NUMBERED.match(line)
        if m and not _BREAK.match(line):
            items.append(_EMPHASIS.sub("", m.group(m.lastindex)).strip())
    return [i for i in items if i]


@register
class AlphabeticalList(Checked):
    id, taxonomy, params = "structure:alphabetical_list", "Format/text format", {"min_items": int}

    def describe(self, kw):
        return f"Give a list of at least {kw['min_items']} items (bullets or numbers), sorted from A to Z."

    def problem(self, response, kw):
        items = list_items(response)
        if len(items) < kw["min_items"]:
            return f"it has {len(items)} list items; it needs at least {kw['min_items']}"
        keys = [i.casefold() for i in items]
        for a, b, ka, kb in zip(items, items[1:], keys, keys[1:]):
            if kb < ka:
                return f"the list is not in A-Z order: {quote(b)} should come before {quote(a)}"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"min_items": rng.randint(3, 7)}


@register
class CountdownList(Checked):
    id, taxonomy, params = "structure:countdown_list", "Format/text format", {"start": int}

    def describe(self, kw):
        return f"Present your answer as a countdown: a numbered list that goes from {kw['start']} down to 1."

    def problem(self, response, kw):
        numbers = [int(m.group(1)) for m in map(_NUMBERED.match, lines(response)) if m]
        want = list(range(kw["start"], 0, -1))
        if numbers == want:
            return None
        got = ordinal_list(numbers) if numbers else "nothing"
        return f"the numbered items run {got}; they should run {ordinal_list(want)}"

    def sample_kwargs(self, rng, prompt=""):
        return {"start": rng.randint(3, 10)}


_STEP = re.compile(r"^\s*(?:[-*+>#]\s*)*[*_]*step\s+(\d+)[*_]*\s*[:.)\u2013\u2014-]", re.IGNORECASE)


@register
class NumberedSteps(Checked):
    id, taxonomy, params = "structure:numbered_steps", "Format/text format", {"num_steps": int}

    def describe(self, kw):
        return (f"Break the answer into exactly {kw['num_steps']} steps, each on its own line beginning "
                f"'Step 1:', 'Step 2:', and so on.")

    def problem(self, response, kw):
        numbers = [int(m.group(1)) for m in map(_STEP.match, lines(response)) if m]
        want = list(range(1, kw["num_steps"] + 1))
        if numbers == want:
            return None
        if not numbers:
            n = kw["num_steps"]
            return f"no line starts with 'Step 1:'; it needs {n} lines 'Step 1:' to 'Step {n}:'"
        return f"the steps are numbered {ordinal_list(numbers)}; they should run {ordinal_list(want)}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_steps": rng.randint(3, 7)}


@register
class BulletsEndWithPeriod(Checked):
    id, taxonomy, params = "structure:bullets_end_with_period", "Format/punctuation", {"min_bullets": int}

    def describe(self, kw):
        return f"Use at least {kw['min_bullets']} bullet points, and finish every bullet point with a period."

    def problem(self, response, kw):
        items = [m.group(1) for m in map(_BULLET.match, lines(response)) if m and not _BREAK.match(m.group(0))]
        if len(items) < kw["min_bullets"]:
            return f"it has {len(items)} bullet points; it needs at least {kw['min_bullets']}"
        for i, item in enumerate(items, 1):
            if not _EMPHASIS.sub("", item).rstrip().endswith("."):
                return f"bullet {i} ({quote(item)}) does not end with a period"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"min_bullets": rng.randint(2, 5)}


_LEAD_IN = re.compile(r"^(\*\*|__)[^*_\s][^*_]*?\1")


@register
class BoldLeadIn(Checked):
    id, taxonomy, params = "structure:bold_lead_in", "Format/text format", {"min_bullets": int}

    def describe(self, kw):
        return (f"Write at least {kw['min_bullets']} bullet points, and open each one with a short bolded phrase, "
                "like '- **Cost:** ...'.")

    def problem(self, response, kw):
        items = [m.group(1) for m in map(_BULLET.match, lines(response)) if m and not _BREAK.match(m.group(0))]
        if len(items) < kw["min_bullets"]:
            return f"it has {len(items)} bullet points; it needs at least {kw['min_bullets']}"
        for i, item in enumerate(items, 1):
            if not _LEAD_IN.match(item):
                return f"bullet {i} ({quote(item)}) does not open with a **bold** phrase"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"min_bullets": rng.randint(2, 5)}


# ---- tables and code -------------------------------------------------------------

_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def tables(text: str) -> list[tuple[int, list[int]]]:
    """Every markdown table as (number of header cells, number of cells in each data row)."""
    rows = normalize(text).split("\n")
    found, i = [], 0
    while i + 1 < len(rows):
        head, sep = rows[i].strip(), rows[i + 1].strip()
        if "|" in head and _SEPARATOR.match(sep) and "|" in sep:
            body, j = [], i + 2
            while j < len(rows) and "|" in rows[j] and rows[j].strip():
                body.append(len(_cells(rows[j])))
                j += 1
            found.append((len(_cells(head)), body))
            i = j
        else:
            i += 1
    return found


@register
class TableShape(Checked):
    id, taxonomy, params = "structure:table_shape", "Format/text format", {"rows": int, "columns": int}

    def describe(self, kw):
        return (f"Include a markdown table with {kw['columns']} columns and {kw['rows']} rows below its header row "
                "(header, then a |---| line, then the rows).")

    def problem(self, response, kw):
        found = tables(response)
        if not found:
            return "there is no markdown table (a header row, a |---|---| line, then the data rows)"
        for head, body in found:
            if head == kw["columns"] and len(body) == kw["rows"] and all(n == head for n in body):
                return None
        head, body = found[0]
        uneven = [i for i, n in enumerate(body, 1) if n != head]
        if head == kw["columns"] and len(body) == kw["rows"] and uneven:
            return f"row {uneven[0]} of the table has {body[uneven[0] - 1]} cells; the header has {head}"
        return (f"the table has {len(body)} rows and {head} columns; it needs {kw['rows']} rows "
                f"and {kw['columns']} columns")

    def sample_kwargs(self, rng, prompt=""):
        return {"rows": rng.randint(2, 6), "columns": rng.randint(2, 4)}


CODE_LANGUAGES = ["python", "json", "yaml", "bash", "sql", "javascript", "text", "markdown"]


@register
class CodeBlock(Checked):
    id, taxonomy, params = "structure:code_block", "Format/text format", {"language": CODE_LANGUAGES}

    def describe(self, kw):
        lang = kw["language"]
        return f"Put part of your answer in a fenced code block marked as {lang} (```{lang} ... ```)."

    def problem(self, response, kw):
        text = normalize(response)
        fences = re.findall(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*```", text, flags=re.MULTILINE | re.DOTALL)
        if any(tag.lower() == kw["language"] and body.strip() for tag, body in fences):
            return None
        if not fences:
            return f"there is no closed fenced code block; open one with ```{kw['language']} and close it with ```"
        tags = ", ".join(repr(tag) if tag else "no language" for tag, _ in fences)
        return f"the code blocks are marked {tags}; one must be ```{kw['language']} and hold some text"

    def sample_kwargs(self, rng, prompt=""):
        return {"language": rng.choice(CODE_LANGUAGES)}


# ---- templates --------------------------------------------------------------------

_QA = re.compile(r"^\s*(?:[-*+>]\s*)?[*_]*(Q|A|Question|Answer)[*_]*\s*:[*_]*\s*(.*)$", re.IGNORECASE)


@register
class QAPairs(Checked):
    id, taxonomy, params = "template:qa_pairs", "Format/template", {"num_pairs": int}

    def describe(self, kw):
        return (f"Format the answer as {kw['num_pairs']} question-and-answer pairs: a line starting 'Q:' "
                "followed by a line starting 'A:'.")

    def problem(self, response, kw):
        marks = []
        for line in lines(response):
            m = _QA.match(line)
            if m:
                marks.append(("Q" if m.group(1).lower().startswith("q") else "A", m.group(2).strip(" *_")))
        for i, (mark, text) in enumerate(marks):
            want = "QA"[i % 2]
            if mark != want:
                return (f"marked line {i + 1} starts with '{mark}:' where '{want}:' was due; "
                        "Q: and A: lines must alternate")
            if not text:
                return f"a '{mark}:' line is empty; write the {'question' if mark == 'Q' else 'answer'} on that line"
        pairs = len(marks) // 2
        if len(marks) % 2:
            return "the last question has no 'A:' line after it"
        return None if pairs == kw["num_pairs"] else f"it has {pairs} Q:/A: pairs; it needs exactly {kw['num_pairs']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_pairs": rng.randint(2, 5)}


LABEL_SETS = [["Summary", "Details"], ["Goal", "Steps", "Risks"], ["Pros", "Cons", "Verdict"],
              ["Problem", "Cause", "Fix"], ["Who", "What", "When", "Where"], ["Title", "Audience", "Message"],
              ["Context", "Answer"], ["Observation", "Reason", "Suggestion"]]


@register
class LabeledFields(Checked):
    id, taxonomy, params = "template:labeled_fields", "Format/template", {"labels": list}

    def describe(self, kw):
        shown = ", ".join(f"'{label}:'" for label in kw["labels"])
        return f"Fill in these labeled fields in this order, each label starting its own line: {shown}"

    def problem(self, response, kw):
        plain_lines = [plain(line) for line in lines(response)]
        starts = []
        for label in kw["labels"]:
            field = re.compile(rf"{re.escape(label)}\s*:", re.IGNORECASE)
            hits = [i for i, line in enumerate(plain_lines) if field.match(line)]
            if not hits:
                return f"no line starts with '{label}:'"
            starts.append(hits[0])
        if starts != sorted(starts):
            order = [label for _, label in sorted(zip(starts, kw["labels"]))]
            return f"the fields come in the order {', '.join(order)}; they must come as {', '.join(kw['labels'])}"
        for n, (label, start) in enumerate(zip(kw["labels"], starts)):
            end = starts[n + 1] if n + 1 < len(starts) else len(plain_lines)
            body = plain_lines[start].split(":", 1)[1] + " ".join(plain_lines[start + 1:end])
            if not WORD.search(body):
                return f"the field '{label}:' is empty"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"labels": list(rng.choice(LABEL_SETS))}


@register
class SubjectLine(Checked):
    id, taxonomy, params = "template:subject_line", "Format/template", {"max_words": int}

    def describe(self, kw):
        return f"Open with a line 'Subject: ...' that sums up the message in at most {kw['max_words']} words."

    def problem(self, response, kw):
        first = lines(response)[:1]
        m = re.match(r"^\s*[*_#]*\s*subject\s*[*_]*\s*:\s*(.*)$", first[0], re.IGNORECASE) if first else None
        if not m:
            return f"the first line is {quote(first[0]) if first else 'missing'}; it must start with 'Subject:'"
        n = len(words(m.group(1)))
        if not 1 <= n <= kw["max_words"]:
            return f"the subject has {n} words; it needs 1 to {kw['max_words']}"
        return None

    def sample_kwargs(self, rng, prompt=""):
        return {"max_words": rng.randint(4, 10)}


STRUCTURE_IDS: tuple[str, ...] = tuple(c.id for c in Checked.__subclasses__() if c.__module__ == __name__)
