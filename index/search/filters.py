"""Filters: which documents a search may answer from, in Qdrant's shape.

A filter is a `Filter` of three lists of conditions, as in Qdrant
(https://qdrant.tech/documentation/concepts/filtering/):

* ``must``: every condition holds;
* ``should``: at least one holds (when the list is not empty);
* ``must_not``: none holds.

A condition is a `Match` (the field equals a value, or one of several: Qdrant's ``match.value``
and ``match.any``), a `Range` (``gt``/``gte``/``lt``/``lte`` over numbers, or over dates for
``published`` and date-valued metadata), `IsEmpty` (the field has no value; ``must_not`` of it
is "exists"), `HasId` (the document is one of these ids), or a nested `Filter`.

Fields (`check_key`): the documents' ``id``, ``title``, ``source``, ``author``, ``url`` and
``published``, and any metadata key as ``metadata.<key>`` (dots go into nested mappings). Text
matches exactly. A date bound without a time stands for its whole day: ``gte: 2025-11-01`` starts
at its midnight, ``lte: 2025-11-30`` ends at the next midnight, ``gt`` starts after the day,
``lt`` ends before it; a time without an offset is UTC.

Every field is a document's, so a filter picks documents, and a passage matches when its
document does (a context window, made of one document's chunks, matches with its passage).
`Filter.documents` evaluates a filter over one segment's `DocumentFields`; the reader spreads
the result to chunks (`index.search.reader.IndexReader.allowed`). The rules a filter must follow
(known fields, a range's bounds of one kind and on a field that takes them) are checked here,
once, when one is made: `FilterError` says what is wrong. Out of scope: the JSON syntax
(`service.filter_schema` parses it into these classes) and where the mask is applied (the reader's
dense and BM25 searches).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from index.storage.field_keys import BUILT_IN_FIELDS, METADATA_PREFIX, Scalar

if TYPE_CHECKING:  # the columns need numpy; the syntax does not (the HTTP client loads it)
    from index.storage.fields import DocumentFields, Mask

TEXT_ONLY_FIELDS = ("id", "title", "source", "author", "url")  # no ranges over these
RangeBound = float | dt.date  # dt.datetime is a dt.date too
FIELD_RULE = f"one of {', '.join(BUILT_IN_FIELDS)}, or {METADATA_PREFIX}<key> for a metadata field"


class FilterError(ValueError):
    """A filter that breaks a rule of this module; the message names the field and the rule."""


def check_key(key: str) -> str:
    if key in BUILT_IN_FIELDS:
        return key
    if key.startswith(METADATA_PREFIX) and all(key[len(METADATA_PREFIX) :].split(".")):
        return key
    raise FilterError(f"unknown field {key!r}: use {FIELD_RULE}")


@dataclass(frozen=True)
class Match:
    """The field equals one of `values` (a list-valued field: one of its items does)."""

    key: str
    values: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        check_key(self.key)
        if not self.values:
            raise FilterError(f"match on {self.key!r} needs at least one value")

    def documents(self, fields: DocumentFields) -> Mask:
        return fields.equal(self.key, self.values)

    def to_dict(self) -> dict[str, Any]:
        match = {"value": self.values[0]} if len(self.values) == 1 else {"any": list(self.values)}
        return {"key": self.key, "match": match}


@dataclass(frozen=True)
class Range:
    """The field lies within the bounds: all numbers, or all dates (`published`: dates only)."""

    key: str
    gt: RangeBound | None = None
    gte: RangeBound | None = None
    lt: RangeBound | None = None
    lte: RangeBound | None = None

    def __post_init__(self) -> None:
        check_key(self.key)
        bounds = [bound for bound in (self.gt, self.gte, self.lt, self.lte) if bound is not None]
        if not bounds:
            raise FilterError(f"range on {self.key!r} needs at least one of gt, gte, lt, lte")
        if self.key in TEXT_ONLY_FIELDS:
            raise FilterError(f"field {self.key!r} is text: a range applies to published or metadata fields")
        dates = [isinstance(bound, dt.date) for bound in bounds]
        if any(dates) and not all(dates):
            raise FilterError(f"range on {self.key!r} mixes dates and numbers")
        if self.key == "published" and not all(dates):
            raise FilterError("range on 'published' takes ISO 8601 dates, such as 2025-11-01")

    @property
    def kind(self) -> str:
        return "instants" if self.key == "published" or isinstance(self._first, dt.date) else "numbers"

    @property
    def _first(self) -> RangeBound:
        return next(bound for bound in (self.gt, self.gte, self.lt, self.lte) if bound is not None)

    def documents(self, fields: DocumentFields) -> Mask:
        lows = [_low(bound, inclusive) for bound, inclusive in ((self.gt, False), (self.gte, True))]
        highs = [_high(bound, inclusive) for bound, inclusive in ((self.lt, False), (self.lte, True))]
        # The stricter bound wins; at equal values, an exclusive one.
        low = max((b for b in lows if b is not None), key=lambda b: (b[0], not b[1]), default=None)
        high = min((b for b in highs if b is not None), key=lambda b: (b[0], b[1]), default=None)
        return fields.between(
            self.key,
            self.kind,
            None if low is None else low[0],
            None if high is None else high[0],
            low_inclusive=low is None or low[1],
            high_inclusive=high is None or high[1],
        )

    def to_dict(self) -> dict[str, Any]:
        bounds = {"gt": self.gt, "gte": self.gte, "lt": self.lt, "lte": self.lte}
        return {
            "key": self.key,
            "range": {name: _json(bound) for name, bound in bounds.items() if bound is not None},
        }


@dataclass(frozen=True)
class IsEmpty:
    """The field has no value: missing, null, "" or an empty list."""

    key: str

    def __post_init__(self) -> None:
        check_key(self.key)

    def documents(self, fields: DocumentFields) -> Mask:
        return ~fields.present(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {"is_empty": {"key": self.key}}


@dataclass(frozen=True)
class HasId:
    """The document is one of `ids`."""

    ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.ids:
            raise FilterError("has_id needs at least one document id")

    def documents(self, fields: DocumentFields) -> Mask:
        return fields.equal("id", self.ids)

    def to_dict(self) -> dict[str, Any]:
        return {"has_id": list(self.ids)}


@dataclass(frozen=True)
class Filter:
    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    @property
    def is_empty(self) -> bool:
        """No condition at all: every document matches."""
        return not (self.must or self.should or self.must_not)

    def documents(self, fields: DocumentFields) -> Mask:
        """Which of a segment's documents (by row) match."""
        mask = fields.everything()
        for condition in self.must:
            mask &= condition.documents(fields)
        if self.should:
            mask &= functools.reduce(operator.or_, [condition.documents(fields) for condition in self.should])
        for condition in self.must_not:
            mask &= ~condition.documents(fields)
        return mask

    def to_dict(self) -> dict[str, Any]:
        """The filter in its JSON form (what a request sends)."""
        clauses = {"must": self.must, "should": self.should, "must_not": self.must_not}
        return {name: [c.to_dict() for c in conditions] for name, conditions in clauses.items() if conditions}

    def and_(self, other: Filter | None) -> Filter:
        """Both this filter and `other`."""
        if other is None or other.is_empty:
            return self
        if self.is_empty:
            return other
        return Filter(must=(self, other))


Condition = Match | Range | IsEmpty | HasId | Filter


def _midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()


def _instant(bound: dt.datetime) -> float:
    return (bound if bound.tzinfo else bound.replace(tzinfo=dt.UTC)).timestamp()


def _low(bound: RangeBound | None, inclusive: bool) -> tuple[float, bool] | None:
    """The lower end of a bound as (value, inclusive): a day alone starts at its midnight, or at
    the next one for `gt`."""
    if bound is None:
        return None
    if isinstance(bound, dt.datetime):
        return _instant(bound), inclusive
    if isinstance(bound, dt.date):
        return _midnight(bound if inclusive else bound + dt.timedelta(days=1)), True
    return float(bound), inclusive


def _high(bound: RangeBound | None, inclusive: bool) -> tuple[float, bool] | None:
    """The upper end of a bound: a day alone ends before the next midnight (`lte`) or its own (`lt`)."""
    if bound is None:
        return None
    if isinstance(bound, dt.datetime):
        return _instant(bound), inclusive
    if isinstance(bound, dt.date):
        return _midnight(bound + dt.timedelta(days=1) if inclusive else bound), False
    return float(bound), inclusive


def _json(bound: RangeBound) -> Any:
    return bound.isoformat() if isinstance(bound, dt.date) else bound
