"""Text helpers the IFEval checkers rely on, equal to the official ones.

* sentences and `word_tokenize`: NLTK's English Punkt model. Its parameters
  (NLTK's `punkt_tab/english`, Apache-2.0, see nltk_data/.../README) ship
  inside this package, because NLTK downloads them at run time and these
  machines have no network for that.
* `count_words`: NLTK's `RegexpTokenizer(r"\\w+")`, as IFEval counts words.
* `detect_language`: langdetect with a fixed seed, so verdicts repeat.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

NLTK_DATA = Path(__file__).parent / "nltk_data"
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _punkt():
    import nltk
    from nltk.tokenize.punkt import PunktTokenizer

    if str(NLTK_DATA) not in nltk.data.path:
        nltk.data.path.insert(0, str(NLTK_DATA))
    return PunktTokenizer("english")


def use_bundled_nltk_data() -> None:
    """Let NLTK itself (e.g. an oracle library) find the bundled punkt_tab."""
    _punkt()


def split_sentences(text: str) -> list[str]:
    return _punkt().tokenize(text)


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def word_tokenize(text: str) -> list[str]:
    """NLTK's `word_tokenize` (Punkt sentences, then the Treebank word tokenizer)."""
    import nltk

    _punkt()
    return nltk.word_tokenize(text)


@lru_cache(maxsize=4096)
def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None when langdetect cannot tell."""
    import langdetect
    from langdetect.lang_detect_exception import LangDetectException

    langdetect.DetectorFactory.seed = 0
    try:
        return langdetect.detect(text)
    except LangDetectException:
        return None
