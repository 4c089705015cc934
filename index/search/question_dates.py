"""A question's own dates as a filter: "what did Dawn say in November 2025?" searches November 2025.

`dates_in_question(has_dates, text, as_of)` reads the time range a question states
(`index.text.dates.date_range_in`, against the request's date `as_of`) and turns it into a
`published` range (`index.search.filters.Range`, both ends inclusive days), which the search
adds to the request's own filter. Only when the index has dated documents: over a corpus
without dates the range would leave nothing to answer from, so the question is searched whole.
The response says what was applied (`QuestionDates.to_dict`: the condition, and the words it
came from with their offsets), and a request can turn it off.

Out of scope: reading dates (`index.text.dates`) and filtering (`index.search.filters`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from index.search.filters import Range
from index.text.dates import date_range_in


@dataclass(frozen=True)
class QuestionDates:
    condition: Range  # on `published`
    phrase: str  # the question's words it came from, question[start:end]
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        """The condition in the filter's JSON form, with the words it came from."""
        return {**self.condition.to_dict(), "phrase": self.phrase, "start": self.start, "end": self.end}


def dates_in_question(has_dates: bool, text: str, as_of: dt.date) -> QuestionDates | None:
    """The range of publication dates `text` states, as of `as_of`, if the index has dated
    documents (`has_dates`: a reader's, or any shard's)."""
    if not has_dates:
        return None
    found = date_range_in(text, as_of)
    if found is None or (found.after is None and found.before is None):
        return None
    return QuestionDates(
        Range("published", gte=found.after, lte=found.before), found.phrase, found.start, found.end
    )
