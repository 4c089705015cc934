"""Expected answer types: a question asking for a quantity, a duration, a year or a date needs one
in its answer, next to the thing it asks about.

Classic question-answering practice, kept deliberately small. The question's wording says which
type it expects (``how many``, ``how long``, ``what year``, ``what date``, ``the cost of``,
``GDP``...) and, for quantities, its focus: the word counted or measured ("how many *warheads*",
"the *cost* of"). A sentence offers the answer when it holds a value of that type (a numeral, a
number word, a duration word, a four-digit year or a month name) and, when there is a focus, the
focus word too. Retrieval uses this twice: a sentence that offers the answer is preferred as the
answer span, and a question none of whose top answer sentences offers it is not `answerable`
(the corpus talks about the subject but does not hold the figure asked for).
Out of scope: names and places (`who`, `where`), which text alone cannot confirm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from index.lexical import stem_tokens

AnswerType = Literal["quantity", "duration", "year", "date"]


@dataclass(frozen=True)
class ExpectedAnswer:
    type: AnswerType
    focus: str | None = None  # stem of the word counted or measured, if the question names one


_MEASURES = "cost|price|population|gdp|length|number|size|amount|budget|value|area|height|distance"
_YEAR = re.compile(r"\b(what|which|in what) year\b|\bwhen was .* (founded|established|created)\b", re.I)
_DATE = re.compile(r"\b(what|which) (date|day)\b", re.I)
_DURATION = re.compile(r"\bhow long (did|does|do|has|have|had|was|were|is|will)\b", re.I)
_COUNT = re.compile(r"\bhow (many|much|far|old|large|big|long)\s+(?:of\s+)?(?:the\s+)?([\w’'-]+)?", re.I)
_MEASURE = re.compile(
    rf"\b(?:what|which)\s+(?:is|was|are|were)\s+(?:[\w’'-]+\s+){{0,3}}?({_MEASURES})\b|\b(gdp)\b", re.I
)
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

# "one" is left out: far more often a pronoun ("one negotiated at both levels") than a count.
_NUMBER_WORDS = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fifteen|twenty|thirty|"
    "forty|fifty|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|half|double|twice|percent"
)
_DURATION_WORDS = "decades?|years?|months?|weeks?|days?|hours?|centur(y|ies)"
_VALUES: dict[AnswerType, re.Pattern[str]] = {
    "quantity": re.compile(rf"\d|\b({_NUMBER_WORDS})\b", re.I),
    "duration": re.compile(rf"\d|\b({_NUMBER_WORDS}|{_DURATION_WORDS})\b", re.I),
    "year": re.compile(r"\b(1[5-9]|20)\d\d\b"),
    "date": re.compile(
        r"\b(january|february|march|april|may|june|july|august|september|october|november|december)\b"
        r"|\b\d{1,2}[/-]\d{1,2}[/-]\d{2,4}\b|\b(1[5-9]|20)\d\d-\d\d-\d\d\b",
        re.I,
    ),
}


def expected_answer(question: str) -> ExpectedAnswer | None:
    if _YEAR.search(question):
        return ExpectedAnswer("year")
    if _DATE.search(question):
        return ExpectedAnswer("date")
    if _DURATION.search(question):
        return ExpectedAnswer("duration")
    if count := _COUNT.search(question):
        focus = (count.group(2) or "").lower()
        return ExpectedAnswer("quantity", None if focus in _NOT_A_FOCUS else _stem(focus))
    if measure := _MEASURE.search(question):
        return ExpectedAnswer("quantity", _stem(measure.group(1) or measure.group(2)))
    return None


def offers_answer(sentence: str, expected: ExpectedAnswer | None) -> bool:
    if expected is None:
        return True
    if not _VALUES[expected.type].search(sentence):
        return False
    return expected.focus is None or expected.focus in set(stem_tokens([sentence])[0])


def _stem(word: str) -> str | None:
    stems = stem_tokens([word])[0]
    return stems[0] if stems else None
