"""Verifiable constraints beyond IFEval, for more diverse training instructions.

Families in the spirit of IFBench and open-instruct's verifiable rewards
(words per sentence, first/last word, palindromes, emoji, stop-word ratio,
repeated phrases, letter and digit counts, JSON keys, ...), written with
the same interface as the IFEval kinds. Ids use the prefix of the nearest
IFEval family so the taxonomy reads the same way.
"""

from __future__ import annotations

import json
import re

from spar.constraints.base import Constraint, register
from spar.constraints.ifeval_kinds import RELATIONS, compare, relation_text, strip_json_fence
from spar.constraints.text import split_sentences

_WORDS = re.compile(r"[A-Za-z0-9']+")
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\U0001F000-\U0001F2FF]")
STOP_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those i you he she we they me him her us them my your his our their not no so than too very can will "
    "just do does did have has had there here what which who whom when where why how all any each".split()
)
PHRASES = ["once upon a time", "as a matter of fact", "in the long run", "at the end of the day", "step by step"]


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)


@register
class WordsPerSentence(Constraint):
    id, taxonomy, params = "length_constraints:words_per_sentence", "Format/length", {"max_words": int}

    def describe(self, kw):
        return f"Keep every sentence to at most {kw['max_words']} words."

    def evaluate(self, response, kw):
        longest = max((len(_words(s)) for s in split_sentences(response)), default=0)
        return longest <= kw["max_words"], f"its longest sentence has {longest} words; the limit is {kw['max_words']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"max_words": rng.randint(8, 20)}


@register
class CharacterCount(Constraint):
    id, taxonomy = "length_constraints:number_characters", "Format/length"
    params = {"num_characters": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"Your response should have {relation_text(kw['relation'], kw['num_characters'], 'characters')}."

    def evaluate(self, response, kw):
        need = relation_text(kw["relation"], kw["num_characters"], "characters")
        n = len(response)
        return compare(n, kw["relation"], kw["num_characters"]), f"it has {n} characters; it needs {need}"

    def sample_kwargs(self, rng, prompt=""):
        relation = rng.choice(RELATIONS)
        choices = [300, 500, 800] if relation == "less than" else [100, 200, 400]
        return {"num_characters": rng.choice(choices), "relation": relation}


@register
class FirstWord(Constraint):
    id, taxonomy, params = "startend:first_word", "Content/sentence", {"first_word": str}

    def _first(self, response):
        words = _words(response)
        return words[0].lower() if words else ""

    def describe(self, kw):
        return f"Start your response with the word '{kw['first_word']}'."

    def evaluate(self, response, kw):
        first = self._first(response)
        return first == kw["first_word"].lower(), f"it starts with {first!r}, not {kw['first_word']!r}"

    def sample_kwargs(self, rng, prompt=""):
        return {"first_word": rng.choice(["Today", "Imagine", "Yes", "Honestly", "First", "Listen", "Once"])}


@register
class LastWord(Constraint):
    id, taxonomy, params = "startend:last_word", "Content/sentence", {"last_word": str}

    def _last(self, response):
        words = _words(response)
        return words[-1].lower() if words else ""

    def describe(self, kw):
        return f"The very last word of your response must be '{kw['last_word']}'."

    def evaluate(self, response, kw):
        last = self._last(response)
        return last == kw["last_word"].lower(), f"it ends with {last!r}, not {kw['last_word']!r}"

    def sample_kwargs(self, rng, prompt=""):
        return {"last_word": rng.choice(["forever", "tomorrow", "together", "goodbye", "home", "done"])}


@register
class EmojiCount(Constraint):
    id, taxonomy = "detectable_content:emoji_count", "Content/symbol"
    params = {"num_emojis": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"Use {relation_text(kw['relation'], kw['num_emojis'], 'emojis')} in your response."

    def evaluate(self, response, kw):
        n = len(_EMOJI.findall(response))
        return (compare(n, kw["relation"], kw["num_emojis"]),
                f"it has {n} emojis; it needs {relation_text(kw['relation'], kw['num_emojis'], 'emojis')}")

    def sample_kwargs(self, rng, prompt=""):
        relation = rng.choice(RELATIONS)
        return {"num_emojis": rng.randint(1, 3) if relation == "less than" else rng.randint(1, 4),
                "relation": relation}


@register
class Hashtags(Constraint):
    id, taxonomy, params = "detectable_content:hashtags", "Content/symbol", {"num_hashtags": int}

    def describe(self, kw):
        return f"Include at least {kw['num_hashtags']} hashtags, like #example."

    def evaluate(self, response, kw):
        n = len(re.findall(r"(?<!\w)#\w+", response))
        return n >= kw["num_hashtags"], f"it has {n} hashtags; it needs at least {kw['num_hashtags']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_hashtags": rng.randint(1, 4)}


@register
class Palindrome(Constraint):
    id, taxonomy, params = "keywords:palindrome", "Content/keyword", {"min_length": int}

    def describe(self, kw):
        return f"Include a palindrome word of at least {kw['min_length']} letters (such as 'level' or 'racecar')."

    def evaluate(self, response, kw):
        found = [w for w in _words(response.lower()) if len(w) >= kw["min_length"] and w == w[::-1]]
        return bool(found), f"there is no palindrome word of {kw['min_length']} or more letters"

    def sample_kwargs(self, rng, prompt=""):
        return {"min_length": rng.choice([3, 4, 5])}


@register
class RepeatPhrase(Constraint):
    id, taxonomy = "keywords:repeat_phrase", "Content/keyword"
    params = {"phrase": str, "times": int}

    def describe(self, kw):
        return f"Use the phrase \"{kw['phrase']}\" exactly {kw['times']} times."

    def evaluate(self, response, kw):
        n = len(re.findall(re.escape(kw["phrase"]), response, flags=re.IGNORECASE))
        return n == kw["times"], f"the phrase {kw['phrase']!r} appears {n} times, not exactly {kw['times']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"phrase": rng.choice(PHRASES), "times": rng.randint(1, 3)}


@register
class StopWordRatio(Constraint):
    id, taxonomy, params = "keywords:stop_word_ratio", "Content/keyword", {"max_percent": int}

    def _percent(self, response):
        words = [w.lower() for w in _words(response)]
        return 100 * sum(w in STOP_WORDS for w in words) / len(words) if words else 0.0

    def describe(self, kw):
        return f"Keep common function words (the, and, of, to, ...) to at most {kw['max_percent']}% of your words."

    def evaluate(self, response, kw):
        percent = self._percent(response)
        return (percent <= kw["max_percent"],
                f"{percent:.0f}% of its words are stop words; the limit is {kw['max_percent']}%")

    def sample_kwargs(self, rng, prompt=""):
        return {"max_percent": rng.choice([30, 35, 40, 45])}


@register
class LetterCount(Constraint):
    id, taxonomy = "keywords:word_count_with_letter", "Format/character format"
    params = {"letter": str, "num_words": int}

    def describe(self, kw):
        return f"Use at least {kw['num_words']} words that start with the letter '{kw['letter']}'."

    def evaluate(self, response, kw):
        n = sum(1 for w in _words(response) if w.lower().startswith(kw["letter"].lower()))
        return n >= kw["num_words"], f"only {n} words start with {kw['letter']!r}; it needs {kw['num_words']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"letter": rng.choice("bcdfghlmprst"), "num_words": rng.randint(2, 6)}


@register
class JsonKeys(Constraint):
    id, taxonomy, params = "detectable_format:json_keys", "Format/text format", {"keys": list}

    def describe(self, kw):
        return f"Answer with a JSON object that has the keys {', '.join(repr(k) for k in kw['keys'])}."

    def evaluate(self, response, kw):
        try:
            obj = json.loads(strip_json_fence(response))
        except ValueError:
            return False, "the response is not a valid JSON object"
        missing = [k for k in kw["keys"] if not isinstance(obj, dict) or k not in obj]
        return not missing, f"the JSON object lacks the key(s) {missing}"

    def sample_kwargs(self, rng, prompt=""):
        keys = ["title", "summary", "tags", "rating", "author", "steps", "answer"]
        return {"keys": rng.sample(keys, rng.randint(1, 3))}


@register
class NumberedList(Constraint):
    id, taxonomy, params = "detectable_format:numbered_list", "Format/text format", {"num_items": int}

    def describe(self, kw):
        return f"Format your answer as a numbered list with exactly {kw['num_items']} items (1., 2., ...)."

    def evaluate(self, response, kw):
        n = len(re.findall(r"^\s*\d+[.)]\s+\S", response, flags=re.MULTILINE))
        return n == kw["num_items"], f"it has {n} numbered items, not exactly {kw['num_items']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_items": rng.randint(2, 6)}


@register
class MarkdownHeaders(Constraint):
    id, taxonomy, params = "detectable_format:markdown_headers", "Format/text format", {"num_headers": int}

    def describe(self, kw):
        return f"Organize the answer under at least {kw['num_headers']} markdown headers (lines starting with #)."

    def evaluate(self, response, kw):
        n = len(re.findall(r"^#{1,6} \S", response, flags=re.MULTILINE))
        return n >= kw["num_headers"], f"it has {n} markdown headers; it needs at least {kw['num_headers']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_headers": rng.randint(2, 4)}


@register
class NoExclamation(Constraint):
    id, taxonomy, params = "punctuation:no_exclamation", "Format/punctuation", {}

    def describe(self, kw):
        return "Do not use any exclamation marks."

    def evaluate(self, response, kw):
        return "!" not in response, f"it contains {response.count('!')} exclamation mark(s)"

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class QuestionCount(Constraint):
    id, taxonomy, params = "punctuation:question_marks", "Format/punctuation", {"num_questions": int}

    def describe(self, kw):
        return f"Ask at least {kw['num_questions']} questions (each ending with a question mark)."

    def evaluate(self, response, kw):
        n = response.count("?")
        return n >= kw["num_questions"], f"it has {n} question marks; it needs at least {kw['num_questions']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_questions": rng.randint(1, 3)}


@register
class NoDigits(Constraint):
    id, taxonomy, params = "numeric:no_digits", "Format/numeric format", {}

    def describe(self, kw):
        return "Do not use any digits; write every number out in words."

    def evaluate(self, response, kw):
        shown = ", ".join(sorted(set(re.findall(r"[0-9]+", response)))[:5])
        return not re.search(r"\d", response), f"it contains digits: {shown}"

    def sample_kwargs(self, rng, prompt=""):
        return {}


@register
class DigitCount(Constraint):
    id, taxonomy = "numeric:number_count", "Format/numeric format"
    params = {"num_numbers": int, "relation": RELATIONS}

    def describe(self, kw):
        return f"Mention {relation_text(kw['relation'], kw['num_numbers'], 'numbers written as digits')}."

    def evaluate(self, response, kw):
        n = len(re.findall(r"\d+(?:[.,]\d+)*", response))
        need = relation_text(kw["relation"], kw["num_numbers"], "").rstrip()
        return compare(n, kw["relation"], kw["num_numbers"]), f"it has {n} numbers in digits; it needs {need}"

    def sample_kwargs(self, rng, prompt=""):
        relation = rng.choice(RELATIONS)
        return {"num_numbers": rng.randint(1, 3) if relation == "less than" else rng.randint(1, 4),
                "relation": relation}


@register
class Percentages(Constraint):
    id, taxonomy, params = "numeric:percentages", "Format/numeric format", {"num_percentages": int}

    def describe(self, kw):
        return f"Include at least {kw['num_percentages']} percentages written like 25%."

    def evaluate(self, response, kw):
        n = len(re.findall(r"\d+(?:\.\d+)?\s?%", response))
        return n >= kw["num_percentages"], f"it has {n} percentages; it needs at least {kw['num_percentages']}"

    def sample_kwargs(self, rng, prompt=""):
        return {"num_percentages": rng.randint(1, 3)}


@register
class TitleCase(Constraint):
    id, taxonomy, params = "change_case:title_case", "Format/character format", {}

    def describe(self, kw):
        return "Capitalize The First Letter Of Every Word."

    def evaluate(self, response, kw):
        found = _words(response)
        bad = [w for w in found if w[0].isalpha() and not w[0].isupper()]
        reason = f"these words are not capitalized: {', '.join(bad[:5])}" if bad else "the response is empty"
        return bool(found) and not bad, reason

    def sample_kwargs(self, rng, prompt=""):
        return {}


EXTRA_IDS: tuple[str, ...] = tuple(c.id for c in Constraint.__subclasses__() if c.__module__ == __name__)
