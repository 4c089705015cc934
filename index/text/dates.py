"""Time ranges a question states: "in November 2025", "since 1 October", "last week".

`date_range_in(question, as_of)` finds the first phrase of a question that states a range of
publication dates and returns it as a `DateRange` of inclusive calendar days, or None. It is a
pure function of its arguments: `as_of` (the request's date, today by default at the caller)
resolves relative phrases and dates without a year; nothing else is read.

Which words are a time range is decided here; what date they name is decided by `dateparser`
(English, `RELATIVE_BASE=as_of`, `PREFER_DATES_FROM='past'`), and its `period` (day, week, month,
year) gives the granularity. No date is parsed by hand. A phrase is a range when:

* a cue governs a date directly: `in`/`during`/`on`/`throughout` P is the whole period P;
  `since`/`from` P starts on P's first day, open-ended; `after` P starts the day after P's last
  day; `before`/`prior to` P ends the day before P's first day; `until`/`till`/`through` P ends on
  P's last day (`the end of P` is P's last day, `the start of P` its first);
  `between P and Q` / `from P to Q` runs from P's first day to Q's last (P takes its month and
  year from Q when it lacks them: "from 1 to 15 October", "between March and May 2025");
* it is a relative period on its own: `this`/`last` week, month or year and `yesterday`/`today`
  are that calendar period, whole (a week is Monday to Sunday; `this year` is 1 January to 31
  December of as_of's year: as_of anchors a period, it never truncates one); `the past N units`
  (`in the last 10 days`, `over the past three months`) runs from as_of minus N units to as_of;
* a date without a year (`in March`, `since 1 October`) is its most recent occurrence that
  begins on or before as_of (dateparser's `PREFER_DATES_FROM='past'`);
* `before`/`after`/`since`/`until` an event dated `in P` ("before the visit in 2024") bounds the
  range by P on the side the event could be: before = P's last day, after = P's first day.

Not a range (no filter): a date after a determiner or with a possessive, which makes it part of a
name ("the 2025 agreement", "since the 2022 floods", "last year's budget"); numbers that are not
dates (a bare number other than a year 1900-2099: "top 10", "F-16"); times of day; durations
without an anchor ("for 30 years", "in 12 days"); dates inside quotation marks (a title); month
names without a cue ("Theresa May", "the long march"); and periods that begin after as_of (the
documents filtered are already published).

Out of scope: more than one range per question (the first one found is returned), vague periods
("recently", "in the 1990s", "early 2024"), ranges between events, and languages other than
English.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple


@dataclass(frozen=True)
class DateRange:
    """A range of publication dates a question states.

    `after` is the first day included and `before` the last day included (None: open on that
    side); `after <= before` when both are set. `phrase` is the question's wording it came from,
    `question[start:end]`.
    """

    after: datetime.date | None
    before: datetime.date | None
    phrase: str
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for a response's `filter_from_question`."""
        return {
            "after": self.after.isoformat() if self.after else None,
            "before": self.before.isoformat() if self.before else None,
            "phrase": self.phrase,
            "start": self.start,
            "end": self.end,
        }


class _Period(NamedTuple):
    first: datetime.date
    last: datetime.date


class _Found(NamedTuple):
    period: _Period
    end_token: int  # index of the token after the date expression


_MONTHS = (
    r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|"
    r"nov(ember)?|dec(ember)?"
)
_WEEKDAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# Cheap pre-check: a question none of whose words could start a date never loads dateparser
# (importing it takes half a second, a first parse a tenth).
_MAY_HAVE_DATE = re.compile(
    rf"\b({_MONTHS}|{_WEEKDAYS}|(19|20)\d\d|yesterday|today|days?|weeks?|months?|years?)\b", re.IGNORECASE
)
_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
# Punctuation that ends a date expression; a comma does not ("May 5, 2024").
_STOP = frozenset({"?", "!", ".", ";", ":", '"', "“", "”", "(", ")", "[", "]"})
# Joiners of compounds: a date joined to more ("2024-25", "2024/2025") is not read as one date
# (dateparser reads "2024-25" as 25 December 2024); "from P - Q" still joins two dates.
_COMPOUND = frozenset({"-", "–", "/"})
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
# Cue words, each with how the period it governs bounds the range.
_CUES = {
    "in": "within",
    "during": "within",
    "on": "within",
    "throughout": "within",
    "since": "since",
    "from": "since",
    "after": "after",
    "before": "before",
    "prior to": "before",
    "until": "until",
    "till": "until",
    "through": "until",
    "between": "between",
}
_CUE = re.compile(r"\b(" + "|".join(sorted(_CUES, key=len, reverse=True)) + r")\s+", re.IGNORECASE)
_RANGE_JOINS = {"between": {"and"}, "from": {"to", "until", "till", "through", "-", "–"}}
# A cue followed by one of these governs a name or an event, not a date ("in the 2024 election").
_DETERMINERS = {"the", "a", "an", "its", "his", "her", "their", "our", "my", "your", "that", "these", "those"}
_EDGES = {"end": "last", "start": "first", "beginning": "first"}  # "until the end of 2023"
_UNITS = {"day", "days", "week", "weeks", "month", "months", "year", "years"}
_RELATIVE = re.compile(
    r"\b(?:(?P<prep>in|over|during|within|throughout)\s+)?(?P<the>the\s+)?"
    r"(?P<which>past|last|previous|this)\s+(?:(?P<count>[\w-]+)\s+)?"
    r"(?P<unit>days?|weeks?|months?|years?)\b(?!['’])"
    r"|\b(?P<day>yesterday|today)\b(?!['’])",
    re.IGNORECASE,
)
# An event dated by an `in P` phrase right after it: "before the visit in 2024".
_EVENT_BEFORE = re.compile(
    r"\b(?P<cue>before|after|since|until)\s+the\s+(?:[\w'’-]+\s+){1,3}$", re.IGNORECASE
)
_WINDOW = 6  # tokens a date expression may span ("the end of 5 May 2024")
_YEAR = re.compile(r"(19|20)\d\d")


def date_range_in(question: str, as_of: datetime.date) -> DateRange | None:
    """The first time range `question` states, resolved against `as_of`, or None.

    Both ends are inclusive days (`after` is the first day in the range, `before` the last);
    either may be None (open). See the module docstring for which phrases count and how each
    maps to a range; ranges that begin after `as_of` are dropped.
    """
    if not _MAY_HAVE_DATE.search(question):
        return None
    tokens = [(match.start(), match.end()) for match in _TOKEN.finditer(question)]
    quoted = [(match.start(), match.end()) for match in _QUOTED.finditer(question)]
    candidates = [*_cued_ranges(question, tokens, as_of), *_relative_ranges(question, as_of)]
    candidates = [
        found
        for found in candidates
        if not any(first <= found.start < last for first, last in quoted) and _begins_by(found, as_of)
    ]
    # The earliest phrase wins; of two starting together, the longer ("since last year" over "last
    # year" is settled by position already: the cue comes first).
    candidates.sort(key=lambda found: (found.start, found.start - found.end))
    return candidates[0] if candidates else None


def _begins_by(found: DateRange, as_of: datetime.date) -> bool:
    first = found.after or found.before
    return first is not None and first <= as_of


def _cued_ranges(question: str, tokens: list[tuple[int, int]], as_of: datetime.date) -> list[DateRange]:
    ranges: list[DateRange] = []
    starts = {start: index for index, (start, _end) in enumerate(tokens)}
    for cue in _CUE.finditer(question):
        first_token = starts.get(cue.end())
        if first_token is None:
            continue
        word = " ".join(cue.group(1).lower().split())
        found = _cued_range(question, tokens, first_token, word, as_of)
        if found is None:
            continue
        after, before, end_token = found
        start, end = cue.start(), tokens[end_token - 1][1]
        if _CUES[word] == "within" and (event := _EVENT_BEFORE.search(question, 0, start)):
            # The cue before the event bounds the range, on the side the event could be.
            start = event.start()
            if event.group("cue").lower() in ("before", "until"):
                after = None
            else:
                before = None
        ranges.append(DateRange(after, before, question[start:end], start, end))
    return ranges


def _cued_range(
    question: str, tokens: list[tuple[int, int]], first: int, cue: str, as_of: datetime.date
) -> tuple[datetime.date | None, datetime.date | None, int] | None:
    role = _CUES[cue]
    if cue in _RANGE_JOINS and (span := _two_ended(question, tokens, first, cue, as_of)):
        return span
    if role == "between":
        return None
    found = _date_after(question, tokens, first, as_of)
    if found is None:
        return None
    period = found.period
    bounds: dict[str, tuple[datetime.date | None, datetime.date | None]] = {
        "within": (period.first, period.last),
        "since": (period.first, None),
        "after": (period.last + datetime.timedelta(days=1), None),
        "before": (None, period.first - datetime.timedelta(days=1)),
        "until": (None, period.last),
    }
    after, before = bounds[role]
    return after, before, found.end_token


def _two_ended(
    question: str, tokens: list[tuple[int, int]], first: int, cue: str, as_of: datetime.date
) -> tuple[datetime.date, datetime.date, int] | None:
    """`between P and Q` or `from P to Q`: P's first day to Q's last."""
    words = _window(question, tokens, first)
    join = next((index for index in range(1, len(words)) if words[index].lower() in _RANGE_JOINS[cue]), None)
    if join is None:
        return None
    second = _date_after(question, tokens, first + join + 1, as_of)
    if second is None:
        return None
    first_words = words[:join]
    second_words = words[join + 1 : second.end_token - first]
    if len(first_words) == 1 and first_words[0].isdigit() and second_words and second_words[0].isdigit():
        # "from 1 to 15 October": the first day takes the second's month and year.
        text = " ".join([first_words[0], *second_words[1:]])
        base = as_of
    else:
        # "between March and May 2025": the first date is the latest such date by the second one.
        text = question[tokens[first][0] : tokens[first + join - 1][1]]
        base = second.period.first
    period = _parse(text, base)
    if period is None or period.first > second.period.last:
        return None
    return period.first, second.period.last, second.end_token


def _date_after(
    question: str, tokens: list[tuple[int, int]], first: int, as_of: datetime.date
) -> _Found | None:
    """The date expression that starts at token `first`: the shortest run of tokens that gives
    the same date as the longest run the parser reads (so trailing words it skips are left out)."""
    words = _window(question, tokens, first, _STOP | _COMPOUND)
    if not words:
        return None
    edge = None
    if words[0].lower() in _DETERMINERS:
        # Only "the end/start/beginning of P" is a date after a determiner; "the 2024 election" is a name.
        lowered = [word.lower() for word in words[:3]]
        if len(lowered) < 3 or lowered[0] != "the" or lowered[1] not in _EDGES or lowered[2] != "of":
            return None
        edge, first, words = _EDGES[lowered[1]], first + 3, words[3:]
    best: tuple[_Period, int] | None = None
    for count in range(1, len(words) + 1):
        if not _may_be_date(words[:count]):
            if best:
                break
            continue
        text = question[tokens[first][0] : tokens[first + count - 1][1]]
        period = _parse(text, as_of)
        if period is None:
            if best:
                break
            continue
        if best is None or period != best[0]:
            best = (period, count)
    if best is None:
        return None
    period, count = best
    if count < len(words) and words[count].lower().endswith(("'s", "’s")):
        return None
    following = first + count
    if (
        following < len(tokens)
        and question[slice(*tokens[following])] in _COMPOUND
        and tokens[following][0] == tokens[following - 1][1]
    ):
        return None
    if edge == "last":
        period = _Period(period.last, period.last)
    elif edge == "first":
        period = _Period(period.first, period.first)
    return _Found(period, first + count)


def _may_be_date(words: list[str]) -> bool:
    lowered = [word.lower() for word in words]
    if any(word.endswith(("'s", "’s")) for word in lowered):
        return False  # a possessive: "last year's budget" names a budget
    if any(word in _UNITS and word.endswith("s") for word in lowered):
        return False  # a duration ("12 days"), not a point in time
    # A bare number is a date only as a year ("in 2024"); dateparser reads "10" as October.
    return not (len(words) == 1 and words[0].isdigit() and not _YEAR.fullmatch(words[0]))


def _window(
    question: str, tokens: list[tuple[int, int]], first: int, stops: frozenset[str] = _STOP
) -> list[str]:
    words: list[str] = []
    for start, end in tokens[first : first + _WINDOW]:
        word = question[start:end]
        if word in stops:
            break
        words.append(word)
    return words


def _relative_ranges(question: str, as_of: datetime.date) -> list[DateRange]:
    ranges: list[DateRange] = []
    for match in _RELATIVE.finditer(question):
        if match.group("day"):
            period = _parse(match.group("day"), as_of)
            if period:
                ranges.append(DateRange(period.first, period.last, match.group(), match.start(), match.end()))
            continue
        which, count, unit = (match.group(name) for name in ("which", "count", "unit"))
        rolling = which.lower() == "past" or bool(match.group("the")) or count is not None
        if rolling and which.lower() != "this":
            # "the past two weeks": as_of minus that much, to as_of; dateparser reads the amount.
            since = _moment(f"{count or '1'} {unit} ago", as_of)
            if since is None:
                continue
            after, before = since, as_of
        else:
            if count is not None or unit.lower().endswith("s"):
                continue  # "this two weeks", "last months": not a period
            period = _parse(f"{which} {unit}", as_of)
            if period is None:
                continue
            after, before = period.first, period.last
        # Keep "in"/"over" before a rolling range in its phrase, not before a calendar one
        # ("in the past two weeks"), because `_cued_ranges` never reads "the past ...".
        start = match.start() if rolling else match.start("which")
        ranges.append(DateRange(after, before, question[start : match.end()], start, match.end()))
    return ranges


def _moment(text: str, as_of: datetime.date) -> datetime.date | None:
    """The day dateparser reads `text` as, whatever its period ("2 weeks ago": that very day)."""
    moment = _parser(as_of).get_date_data(text).date_obj
    return None if moment is None else moment.date()


def _parse(text: str, as_of: datetime.date) -> _Period | None:
    """The calendar period dateparser reads `text` as (None for times of day and failures)."""
    data = _parser(as_of).get_date_data(text)
    moment, granularity = data.date_obj, data.period
    if moment is None:
        return None
    day = moment.date()
    if granularity == "day" and "day" in (data.parts or ()):
        return _Period(day, day)
    if granularity == "week":
        monday = day - datetime.timedelta(days=day.weekday())
        return _Period(monday, monday + datetime.timedelta(days=6))
    if granularity == "month":
        last = calendar.monthrange(day.year, day.month)[1]
        return _Period(day.replace(day=1), day.replace(day=last))
    if granularity == "year":
        return _Period(datetime.date(day.year, 1, 1), datetime.date(day.year, 12, 31))
    return None  # "time": a time of day is not a range of publication dates


@lru_cache(maxsize=16)
def _parser(as_of: datetime.date) -> Any:
    # Imported here: dateparser takes half a second to import, and most questions state no date.
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=["en"],
        settings={
            "RELATIVE_BASE": datetime.datetime.combine(as_of, datetime.time()),
            "PREFER_DATES_FROM": "past",
            # Times of day come back as the period "time", so they can be refused.
            "RETURN_TIME_AS_PERIOD": True,
            # Relative and absolute dates only: the timestamp and no-spaces parsers read bare
            # numbers ("2231", "500") as dates.
            "PARSERS": ["relative-time", "absolute-time"],
        },
    )
