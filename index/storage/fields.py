"""A segment's document fields as columns, for filters: Lucene's doc values, built on first use.

A filter asks about document fields (id, title, source, author, url, published, and any metadata
key), never about a passage's text, so it is answered once per document and then spread to the
document's chunks. `DocumentFields` reads a segment's stored documents once, keeps only their
fields (not their texts), and answers with boolean masks over the segment's document rows:

* `equal(key, values)`: rows where the field equals one of `values`; a list-valued metadata
  field (tags) matches when any of its items does. Numbers compare by value (3 equals 3.0);
  a boolean is never a number; text compares exactly (case and accents included).
* `present(key)`: rows where the field has a value (not missing, null, "" or an empty list).
* `between(key, low, high, ...)`: rows where the field, read as a number (`numbers`) or as an
  instant (`instants`: ISO 8601 dates and datetimes as POSIX seconds; a date alone is its
  midnight, a time without offset is UTC), lies in the bounds. A list-valued field matches
  when any item does; values of the other kind never match.

A segment never changes, so its columns are built once and shared by every commit that lists
it; each key's lookup structure is built when a filter first names the key. Out of scope: what a
filter means (`index.search.filters`) and deleted documents (the reader leaves them out).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from index.storage.field_keys import Scalar, field_value

Mask = npt.NDArray[np.bool_]


def instant(value: str) -> float | None:
    """POSIX seconds of an ISO 8601 date or datetime (a date alone: its midnight; no offset: UTC),
    None for text that is not one."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _hashable(value: Any) -> tuple[str, Any] | None:
    """The key a value is looked up by: numbers by value, booleans apart from numbers."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        return ("text", value)
    return None  # null, mappings: nothing to match


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _has_value(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


class DocumentFields:
    """The fields of one segment's documents, row by row (`rows` of them), looked up by key."""

    def __init__(self, rows: int, values: Callable[[str], Sequence[Any]]) -> None:
        self.rows = rows
        self._values = values
        self._lock = threading.Lock()  # readers on several threads may build the same key
        self._equal: dict[str, dict[tuple[str, Any], npt.NDArray[np.int64]]] = {}
        self._present: dict[str, Mask] = {}
        self._sorted: dict[tuple[str, str], tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]] = {}

    @classmethod
    def of_lines(cls, lines: Iterable[bytes], rows: int) -> DocumentFields:
        """The fields of documents stored as JSON lines (`index.storage.segments`), texts dropped."""
        records = []
        for line in lines:
            record = json.loads(line)
            record.pop("text", None)
            records.append(record)
        return cls(rows, lambda key: [field_value(record, key) for record in records])

    def equal(self, key: str, values: Sequence[Scalar]) -> Mask:
        index = self._build(self._equal, key, self._equal_index)
        mask = np.zeros(self.rows, dtype=bool)
        for value in values:
            found = index.get(_hashable(value) or ("none", None))
            if found is not None:
                mask[found] = True
        return mask

    def everything(self) -> Mask:
        return np.ones(self.rows, dtype=bool)

    def present(self, key: str) -> Mask:
        found: Mask = self._build(
            self._present, key, lambda name: np.array([_has_value(v) for v in self._values(name)], dtype=bool)
        )
        return found

    def between(
        self,
        key: str,
        kind: str,
        low: float | None,
        high: float | None,
        low_inclusive: bool = True,
        high_inclusive: bool = True,
    ) -> Mask:
        """Rows whose field, read as `kind` ("numbers" or "instants"), lies between `low` and `high`
        (None: unbounded)."""
        values, rows = self._build(self._sorted, (key, kind), self._sorted_index)
        first = 0 if low is None else int(np.searchsorted(values, low, "left" if low_inclusive else "right"))
        last = (
            len(values)
            if high is None
            else int(np.searchsorted(values, high, "right" if high_inclusive else "left"))
        )
        mask = np.zeros(self.rows, dtype=bool)
        mask[rows[first:last]] = True
        return mask

    def _build(self, cache: dict[Any, Any], key: Any, build: Callable[[Any], Any]) -> Any:
        found = cache.get(key)
        if found is None:
            with self._lock:
                found = cache.get(key)
                if found is None:
                    found = cache[key] = build(key)
        return found

    def _equal_index(self, key: str) -> dict[tuple[str, Any], npt.NDArray[np.int64]]:
        rows: dict[tuple[str, Any], list[int]] = defaultdict(list)
        for row, value in enumerate(self._values(key)):
            for item in _items(value):
                hashed = _hashable(item)
                if hashed is not None and (not rows[hashed] or rows[hashed][-1] != row):
                    rows[hashed].append(row)
        return {value: np.array(found, dtype=np.int64) for value, found in rows.items()}

    def _sorted_index(
        self, key_kind: tuple[str, str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        key, kind = key_kind
        read = _as_instant if kind == "instants" else _as_number
        pairs = [
            (number, row)
            for row, value in enumerate(self._values(key))
            for number in (read(item) for item in _items(value))
            if number is not None
        ]
        pairs.sort()
        return (
            np.array([number for number, _ in pairs], dtype=np.float64),
            np.array([row for _, row in pairs], dtype=np.int64),
        )


def _as_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _as_instant(value: Any) -> float | None:
    return instant(value) if isinstance(value, str) and value else None
