"""Expected answer types: a question asking for a quantity, a duration, a time or a name needs one
in its answer, next to the thing it asks about.

Classic question-answering practice, kept deliberately small and general: the rules describe how
English asks for each type, not any eval set's questions. The question's wording says which type
it expects (``how many``, ``how long``, ``what year``, ``when was ... founded``, ``what date``,
``the cost of``...) and, for quantities, its focus: the word counted or measured ("how many
*warheads*", "the *cost* of"). A sentence offers the answer when it holds a value of that type
and, when there is a focus, the focus word too:

* a quantity: a numeral or a number word ("single", "a dozen", "twelve", "half");
* a duration: the same, or a unit of time;
* a time (``what year``, ``what date``, ``when ...``): a numeral (any year: 911, 1169, 2024), a
  month, or a period word (century, decade, ago, since);
* a name (``who ...``, ``the name of X``): a capitalised word the question does not contain (for
  ``name of X``, within three words of X). ``Who is <Name>?`` asks for a description: no type.

Retrieval uses this twice: a sentence that offers the answer is preferred as the answer span, and
whether the top answers offer it is one of the signals of `answerable` (`index.search.answerability`).
Out of scope: places (`where`) and checking that a name is a person's.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from index.text.analysis import STOPWORDS as _STOPWORDS
from index.text.analysis import term_set, terms

AnswerType = Literal["quantity", "duration", "time", "name"]


@dataclass(frozen=True)
class ExpectedAnswer:
    type: AnswerType
    focus: str | None = None  # stem of the word counted, measured or named, if the question has one
    given: frozenset[str] = frozenset()  # names: the question's own words (lower-cased), not answers


_MEASURES = "cost|price|population|gdp|length|number|size|amount|budget|value|area|height|distance"
_TIME = re.compile(r"\b(what|which|in what) (year|date|day|month|century|decade)\b|^\W*when\b", re.I)
_DURATION = re.compile(r"\bhow long (did|does|do|has|have|had|was|were|is|will)\b", re.I)
_COUNT = re.compile(r"\bhow (many|much|far|old|large|big|long)\s+(?:of\s+)?(?:the\s+)?([\w’'-]+)?", re.I)
_MEASURE = re.compile(
    rf"\b(?:what|which)\s+(?:is|was|are|were)\s+(?:[\w’'-]+\s+){{0,3}}?({_MEASURES})\b|\b(gdp)\b", re.I
)
_WHO = re.compile(r"^\W*who\b", re.I)
_WHO_IS_A_NAME = re.compile(r"^\W*[Ww]ho\s+(?:is|was|are|were)\s+(?:[A-Z][\w’'.-]*\s*)+\W*$")
_NAME_OF = re.compile(r"\bname of\s+(.*)", re.I)
_TOKEN = re.compile(r"\w[\w’'-]*")
_POSSESSIVE = re.compile(r"[’']s$")
_NAME_WINDOW = 3  # words between a name and the focus it names, at most
# After "how many/much" these start the rest of the question, not the thing counted.
_NOT_A_FOCUS = {
    "do",
    "does",
    "did",
    "is",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
    "will",
    "can",
    "could",
    "would",
    "should",
}

_NUMBER_WORDS = (
    "one|single|sole|both|pair|couple|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    "thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    "seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|half|double|"
    "twice|triple|percent|zero|none"
)
_TIME_UNITS = "decades?|years?|months?|weeks?|days?|hours?|minutes?|centur(y|ies)"
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_VALUES: dict[AnswerType, re.Pattern[str]] = {
    "quantity": re.compile(rf"\d|\b({_NUMBER_WORDS})\b", re.I),
    "duration": re.compile(rf"\d|\b({_NUMBER_WORDS}|{_TIME_UNITS})\b", re.I),
    "time": re.compile(
        rf"\d|\b({_MONTHS}|{_TIME_UNITS}|ago|since|until|during|spring|summer|autumn|winter)\b", re.I
    ),
}


def expected_answer(question: str) -> ExpectedAnswer | None:
    if _DURATION.search(question):
        return ExpectedAnswer("duration")
    if count := _COUNT.search(question):
        focus = (count.group(2) or "").lower()
        return ExpectedAnswer("quantity", None if focus in _NOT_A_FOCUS else _stem(focus))
    if measure := _MEASURE.search(question):
        return ExpectedAnswer("quantity", _stem(measure.group(1) or measure.group(2)))
    if _TIME.search(question):
        return ExpectedAnswer("time")
    if name_of := _NAME_OF.search(question):
        return ExpectedAnswer("name", _named_thing(name_of.group(1)), _plain_words(question))
    if _WHO.search(question) and not _WHO_IS_A_NAME.search(question):
        return ExpectedAnswer("name", None, _plain_words(question))
    return None


def offers_answer(sentence: str, expected: ExpectedAnswer | None) -> bool:
    if expected is None:
        return True
    if expected.type == "name":
        return _offers_name(sentence, expected)
    if not _holds_value(expected.type, sentence):
        return False
    return expected.focus is None or expected.focus in term_set(sentence)


@functools.lru_cache(maxsize=50_000)
def _holds_value(answer_type: AnswerType, sentence: str) -> bool:
    """Whether `sentence` holds a value of `answer_type`, cached: the same sentences are looked at query
    after query, and these patterns' alternations cost ~0.3 ms a query (py-spy at c=32)."""
    return _VALUES[answer_type].search(sentence) is not None


def _stem(word: str) -> str | None:
    """The word's first term (its stem; for a CJK word, its first bigram), None for a stop word."""
    word_terms = terms(word)
    return word_terms[0] if word_terms else None


def _offers_name(sentence: str, expected: ExpectedAnswer) -> bool:
    words = _TOKEN.findall(sentence)
    names = [
        position
        for position, word in enumerate(words)
        if word[0].isupper() and _plain(word) not in _STOPWORDS and _plain(word) not in expected.given
    ]
    if not names:
        return False
    if expected.focus is None:
        return True
    focus = [position for position, word in enumerate(words) if _stem(_plain(word)) == expected.focus]
    return any(abs(name - place) <= _NAME_WINDOW for name in names for place in focus)


def _named_thing(rest: str) -> str | None:
    """The noun after "name of": determiners and possessives skipped ("the name of Iran's
    *ambassador* to Pakistan")."""
    for word in _TOKEN.findall(rest):
        plain = _plain(word)
        if plain not in _STOPWORDS and not _POSSESSIVE.search(word.lower()):
            return _stem(plain)
    return None


def _plain_words(text: str) -> frozenset[str]:
    return frozenset(_plain(word) for word in _TOKEN.findall(text))


def _plain(word: str) -> str:
    return _POSSESSIVE.sub("", word.lower())
