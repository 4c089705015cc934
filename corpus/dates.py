"""Publication dates in ISO 8601, whatever form a document states them in.

`normalise_published(text)` is the one rule every way a document comes in applies to its
`published` field (corpus files: YAML front matter, HTML metadata, JSON lines; the HTTP API): it
gives the date in ISO 8601, so that date filters compare instants, not spellings. A date alone
stays a date (`2025-11-03`); a date and time keeps its time and, when one is stated, its offset
(`2025-11-03T09:00:00+03:30`, a named zone becoming its offset); empty stays empty.

ISO 8601 is read by the standard library (`datetime.fromisoformat`) and given back in its
canonical form, so an ISO date or date-time written that way comes back unchanged. Other forms
are read by `dateparser` (English month and weekday names), and only when nothing is guessed.
Refused with `InvalidDateError`, whose message names the value and the accepted forms:

* a day and month in figures that could be read either way round (`03/04/2025`; `13/04/2025`
  and `04/04/2025` can not, and are read);
* a year in two figures (`3 Nov 25`): the century would be a guess;
* anything short of a day, a month and a year (`November 2025`, `2025`), relative phrases
  (`yesterday`, `2 days ago`, `last Monday`) and POSIX timestamps;
* a weekday that is not the date's (`Tuesday, 3 November 2025`: that day is a Monday);
* a zone dateparser does not know (`09:00 XYZ`, `Asia/Tehran`), or an abbreviation several
  zones share (`IST`: India, Israel or Ireland), which dateparser would read as just one of them;
* words around the date (`Published 3 November 2025`), and text over 100 characters.

Out of scope: finding a date in an article's text (a dateline) and documents already in an index,
which are read back as they were stored (a stored date that is not ISO 8601 matches no date
range, and never stops an index from loading).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from corpus.errors import InvalidDateError

if TYPE_CHECKING:
    from dateparser.date import DateData, DateDataParser

ACCEPTED_DATE_FORMS = (
    "ISO 8601 (2025-11-03, 2025-11-03T09:00:00+03:30) or a day, a month and a four-digit year, "
    "with an optional time and zone (3 November 2025, Mon, 3 Nov 2025 09:00 UTC, 11/13/2025)"
)
# Abbreviations several zones share; dateparser's table gives each one offset only (IST is
# Israel's there), which would silently shift an Indian or Irish time.
_SHARED_ZONE_ABBREVIATIONS = frozenset({"IST", "BST", "CST", "AST", "ADT", "GST", "SST"})
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WORD = re.compile(r"[A-Za-z]+")
_SHORTEST_WEEKDAY_ABBREVIATION = 3  # "Mon", "Tue", "Thu"
# The longest accepted form ("Wednesday, 12 November 2025 09:00:00.000000 +03:30") is about 50
# characters; longer text is refused before dateparser spends time on it.
_LONGEST_DATE = 100


@lru_cache(maxsize=4096)  # dateparser takes about a millisecond a value; a corpus repeats its dates
def normalise_published(text: str) -> str:
    """`text` as an ISO 8601 date or date-time; "" for blank text; InvalidDateError when it is
    not a date that can be read without guessing (the module docstring lists the refusals)."""
    stripped = text.strip()
    if not stripped:
        return ""
    if len(stripped) > _LONGEST_DATE:
        raise InvalidDateError(
            f"published date {stripped[:40]!r}... is refused: {len(stripped)} characters, longer than "
            f"any date ({_LONGEST_DATE} at most)"
        )
    return _from_iso(stripped) or _from_words(stripped)


def warm_date_reader() -> None:
    """Load dateparser's data now (a tenth of a second or more), so the first document with a
    date in words does not wait for it."""
    normalise_published("Mon, 3 Nov 2025 09:00 UTC")


def _from_iso(text: str) -> str | None:
    try:
        return dt.date.fromisoformat(text).isoformat()  # a date alone stays a date
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).isoformat()
    except ValueError:
        return None


def _from_words(text: str) -> str:
    # Read with the day first and with the month first: figures that read both ways are ambiguous.
    readings = {reading for order in ("DMY", "MDY") if (reading := _reading(text, order)) is not None}
    if not readings:
        raise _refused(
            text,
            "it is not a day, a month and a year in a form read here (relative phrases, partial "
            "dates, timestamps, unknown zones and words around the date are refused)",
        )
    if len(readings) > 1:
        raise _refused(text, "its day and month could be read either way round")
    [(moment, has_time)] = readings
    if not re.search(rf"(?<!\d){moment.year:04d}(?!\d)", text):
        raise _refused(text, "its year is not written in four figures")
    stated_weekdays = {_weekday(word) for word in _WORD.findall(text)} - {None}
    if stated_weekdays - {moment.weekday()}:
        raise _refused(text, f"{moment.date().isoformat()} is a {_WEEKDAYS[moment.weekday()].title()}")
    if moment.tzinfo is not None and _SHARED_ZONE_ABBREVIATIONS & {w.upper() for w in _WORD.findall(text)}:
        raise _refused(text, "its zone abbreviation names several zones: give the offset (+05:30)")
    return moment.isoformat() if has_time else moment.date().isoformat()


def _reading(text: str, date_order: str) -> tuple[dt.datetime, bool] | None:
    """What dateparser reads `text` as with figures in `date_order`: the moment and whether a
    time was stated; None when it reads no complete date."""
    found: DateData = _parser(date_order).get_date_data(text)
    if found.date_obj is None:
        return None
    return found.date_obj, found.period == "time"


@lru_cache(maxsize=2)
def _parser(date_order: str) -> DateDataParser:
    # Imported here: dateparser takes a tenth of a second to import and most dates are ISO 8601.
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=["en"],
        settings={
            "DATE_ORDER": date_order,
            "STRICT_PARSING": True,  # a day, a month and a year, or nothing: no part filled in
            "PARSERS": ["absolute-time"],  # no relative phrases, no timestamps
            "RETURN_TIME_AS_PERIOD": True,  # period "time" tells a stated time from midnight
        },
    )


def _weekday(word: str) -> int | None:
    """The weekday `word` names (Monday = 0), in full or abbreviated ("Tue", "Thurs")."""
    lowered = word.lower()
    if len(lowered) < _SHORTEST_WEEKDAY_ABBREVIATION:
        return None
    return next((number for number, name in enumerate(_WEEKDAYS) if name.startswith(lowered)), None)


def _refused(text: str, reason: str) -> InvalidDateError:
    return InvalidDateError(f"published date {text!r} is refused: {reason}; use {ACCEPTED_DATE_FORMS}")
