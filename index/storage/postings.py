"""BM25 over segments: each segment's postings, scored with collection statistics of all of them.

A segment stores, for its chunks, an inverted index: a vocabulary (term -> column), and per
column the chunk rows holding the term and how often (`tf`), plus each chunk's length in terms.
Nothing in it depends on other segments, so it never changes once written.

Scores are Lucene's BM25 (bm25s's "lucene" method, which this project used before segments):

``score(q, d) = sum over the terms t of q of idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))``

``idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))``

where a term repeated in the query counts each time, and `N` (live chunks), `df(t)` (live chunks
holding t) and `avgdl` (mean length of live chunks) are summed over every live segment, deleted
chunks left out. So a query scores each chunk exactly as one index over the same chunks would,
however they are split into segments (`CollectionStatistics`, then `score`). That is why this is
not bm25s: bm25s bakes idf and avgdl into its stored scores at index time.

Out of scope: turning text into terms (`index.text.analysis`), choosing candidates across segments
(`index.search.reader`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index.storage.arrays import contenders, load_array, mapped_array

Rows = npt.NDArray[np.int64]
_RECENT_QUERIES = 8  # per segment and commit: bounded whatever the segment size
# Length norms kept per segment and commit: one per (k1, b, avgdl) in use. A commit has one avgdl
# and the service one (k1, b); two let a request with other options come and go without evicting it.
_RECENT_NORMS = 2
FILES = ("terms.json", "term_ptr.npy", "posting_rows.npy", "posting_tf.npy", "chunk_lengths.npy")


@dataclass(frozen=True)
class Postings:
    """Column `c` (term `terms[c]`) holds `rows[term_ptr[c]:term_ptr[c + 1]]` (ascending) with
    the matching `tf`; `lengths[r]` is chunk r's length in terms."""

    terms: list[str]
    term_ptr: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int32]
    tf: npt.NDArray[np.int32]
    lengths: npt.NDArray[np.int32]

    @classmethod
    def build(cls, chunk_terms: Sequence[Sequence[str]]) -> Postings:
        """Postings of chunks given as term lists (row i = chunk i)."""
        pairs: dict[str, dict[int, int]] = {}
        for row, terms in enumerate(chunk_terms):
            for term in terms:
                counts = pairs.setdefault(term, {})
                counts[row] = counts.get(row, 0) + 1
        vocabulary = sorted(pairs)
        sizes = [len(pairs[term]) for term in vocabulary]
        term_ptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(sizes, out=term_ptr[1:])
        rows = np.fromiter((row for term in vocabulary for row in pairs[term]), np.int32, int(term_ptr[-1]))
        tf = np.fromiter(
            (n for term in vocabulary for n in pairs[term].values()), np.int32, int(term_ptr[-1])
        )
        lengths = np.fromiter((len(terms) for terms in chunk_terms), np.int32, len(chunk_terms))
        return cls(vocabulary, term_ptr, rows, tf, lengths)

    @classmethod
    def merged(cls, parts: Sequence[tuple[Postings, npt.NDArray[np.int64]]]) -> Postings:
        """The postings of several segments' kept chunks, one after another: `(postings, kept)`
        keeps the chunk rows `kept` (ascending) of each part, renumbered from 0 in that order."""
        vocabulary = sorted(set().union(*(part.terms for part, _ in parts)))
        column = {term: index for index, term in enumerate(vocabulary)}
        columns, rows, counts, lengths = [], [], [], []
        offset = 0
        for part, kept in parts:
            renumber = np.full(len(part.lengths), -1, dtype=np.int64)
            renumber[kept] = np.arange(offset, offset + len(kept))
            part_columns = np.repeat(
                np.array([column[term] for term in part.terms], dtype=np.int64), np.diff(part.term_ptr)
            )
            new_rows = renumber[part.rows]
            alive = new_rows >= 0
            columns.append(part_columns[alive])
            rows.append(new_rows[alive])
            counts.append(part.tf[alive])
            lengths.append(part.lengths[kept])
            offset += len(kept)
        all_columns = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        all_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        order = np.lexsort((all_rows, all_columns))
        term_ptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(np.bincount(all_columns, minlength=len(vocabulary)), out=term_ptr[1:])
        keep_terms = np.diff(term_ptr) > 0  # terms only deleted chunks held are dropped
        if not keep_terms.all():
            vocabulary = [term for term, keep in zip(vocabulary, keep_terms, strict=True) if keep]
            term_ptr = np.concatenate([[0], term_ptr[1:][keep_terms]])
        return cls(
            vocabulary,
            term_ptr,
            all_rows[order].astype(np.int32),
            (np.concatenate(counts) if counts else np.zeros(0, dtype=np.int32))[order].astype(np.int32),
            np.concatenate(lengths).astype(np.int32) if lengths else np.zeros(0, dtype=np.int32),
        )

    @functools.cached_property
    def column(self) -> dict[str, int]:
        """Term -> column, built once per loaded segment (not once per commit that reads it)."""
        return {term: index for index, term in enumerate(self.terms)}

    @functools.cached_property
    def total_length(self) -> int:
        return int(np.asarray(self.lengths, dtype=np.int64).sum())

    def save(self, directory: Path) -> None:
        (directory / "terms.json").write_text(json.dumps(self.terms, ensure_ascii=False), "utf-8")
        for name, array in (
            ("term_ptr.npy", self.term_ptr),
            ("posting_rows.npy", self.rows),
            ("posting_tf.npy", self.tf),
            ("chunk_lengths.npy", self.lengths),
        ):
            np.save(directory / name, array)

    @classmethod
    def load(cls, directory: Path) -> Postings:
        terms: list[str] = json.loads((directory / "terms.json").read_text("utf-8"))
        return cls(
            terms,
            load_array(directory / "term_ptr.npy"),
            mapped_array(directory / "posting_rows.npy"),
            mapped_array(directory / "posting_tf.npy"),
            mapped_array(directory / "chunk_lengths.npy"),
        )


@dataclass(frozen=True)
class Matches:
    """One segment's postings for one query's terms, term after term in query order: `rows` and
    `tf` hold term i's live rows and counts in the slice `sizes[:i].sum()` to `sizes[:i + 1].sum()`;
    `sizes[i]` is term i's document frequency in the segment."""

    rows: npt.NDArray[np.int32]
    tf: npt.NDArray[np.int32]
    sizes: npt.NDArray[np.int64]


class SegmentPostings:
    """One segment's postings as a query reads them: a term lookup, and the live chunks."""

    def __init__(self, postings: Postings, live: npt.NDArray[np.bool_] | None) -> None:
        self.postings = postings
        self.live = live  # None: every chunk is live
        self._matches = functools.lru_cache(maxsize=_RECENT_QUERIES)(self._find)
        self._norms = functools.lru_cache(maxsize=_RECENT_NORMS)(self._length_norms)
        self.chunks = int(len(postings.lengths) if live is None else live.sum())
        self.total_length = (
            postings.total_length
            if live is None
            else int(np.asarray(postings.lengths, dtype=np.int64)[live].sum())
        )

    def matches(self, terms: Sequence[str]) -> Matches:
        """The live postings of `terms`. A query reads them twice (collection statistics, then
        scores): the last few queries' answers are kept."""
        return self._matches(tuple(terms))

    def length_norms(self, k1: float, b: float, average: float) -> npt.NDArray[np.float64]:
        """``k1 * (1 - b + b * |d| / avgdl)`` of every chunk `d` of the segment (deleted ones too),
        the part of BM25's saturation that depends on the chunk alone. Computed once per commit
        (whose avgdl it is) and options rather than for every posting of every query: a query at
        a million chunks reads ~650k postings, and this took five passes over them. 8 bytes per
        chunk while cached; the same float64 operations in the same order, so the same values."""
        return self._norms(k1, b, average)

    def _length_norms(self, k1: float, b: float, average: float) -> npt.NDArray[np.float64]:
        length = np.asarray(self.postings.lengths).astype(np.float64)
        norms: npt.NDArray[np.float64] = k1 * (1.0 - b + b * length / average)
        return norms

    def _find(self, terms: tuple[str, ...]) -> Matches:
        columns = np.array([self.postings.column.get(term, -1) for term in terms], dtype=np.int64)
        known = columns >= 0
        starts = np.where(known, self.postings.term_ptr[columns], 0)
        sizes = np.where(known, self.postings.term_ptr[columns + 1] - starts, 0)
        # Each term's postings are one slice: copied slice by slice, not gathered through an array
        # of every position (at a million chunks a query reads ~650k postings, and building and
        # following that index array cost more than the copy).
        bounds = list(zip(starts.tolist(), (starts + sizes).tolist(), strict=True))
        rows = _joined([self.postings.rows[start:end] for start, end in bounds], np.int32)
        tf = _joined([self.postings.tf[start:end] for start, end in bounds], np.int32)
        if self.live is not None:
            keep = self.live[rows]
            rows, tf = rows[keep], tf[keep]
            owner = np.repeat(np.arange(len(terms)), sizes)[keep]
            sizes = np.bincount(owner, minlength=len(terms)).astype(np.int64)
        return Matches(rows, tf, sizes)


def _joined(parts: list[npt.NDArray[Any]], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """The arrays `parts` one after another (a fresh array, even of one part)."""
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


@dataclass(frozen=True)
class CollectionStatistics:
    """N (`chunks`), the live chunks' total length and df over every live segment, for one
    query's terms. Plain numbers, so the statistics of disjoint parts of a collection (the shards
    of a sharded index) add up to the whole's (`summed`): N, the total length and each df are
    sums, and avgdl is taken from the sums, so the idf and avgdl of the whole follow exactly."""

    chunks: int
    total_length: int
    document_frequency: dict[str, int]

    @classmethod
    def of(cls, segments: Sequence[SegmentPostings], terms: Sequence[str]) -> CollectionStatistics:
        chunks = sum(segment.chunks for segment in segments)
        total = sum(segment.total_length for segment in segments)
        frequency = np.zeros(len(terms), dtype=np.int64)
        for segment in segments:
            frequency += segment.matches(terms).sizes
        return cls(chunks, total, dict(zip(terms, frequency.tolist(), strict=True)))

    @classmethod
    def summed(cls, parts: Sequence[CollectionStatistics]) -> CollectionStatistics:
        """The statistics of disjoint parts' chunks together (every part for the same terms)."""
        frequency: dict[str, int] = {}
        for part in parts:
            for term, count in part.document_frequency.items():
                frequency[term] = frequency.get(term, 0) + count
        return cls(sum(p.chunks for p in parts), sum(p.total_length for p in parts), frequency)

    @property
    def average_length(self) -> float:
        """avgdl: the live chunks' mean length in terms (0 without chunks)."""
        return self.total_length / self.chunks if self.chunks else 0.0

    def idf(self, term: str) -> float:
        df = self.document_frequency.get(term, 0)
        return math.log(1.0 + (self.chunks - df + 0.5) / (df + 0.5))


def score(
    segments: Sequence[SegmentPostings],
    terms: Sequence[str],
    statistics: CollectionStatistics,
    k1: float,
    b: float,
) -> npt.NDArray[np.float64]:
    """The BM25 score of every chunk of `segments`, their rows laid end to end (deleted chunks
    score 0). A reader passes blocks of consecutive segments: small segments share one pass, so a
    query pays per match rather than per segment, and a block stays small enough for its arrays to
    sit in the CPU's cache (one pass over 300k chunks took twice as long as segment by segment)."""
    idf = np.array([statistics.idf(term) for term in terms], dtype=np.float64)
    average = statistics.average_length or 1.0
    rows, counts, norms, sizes = [], [], [], []
    offset = 0
    for segment in segments:
        matches = segment.matches(terms)
        # A block of one segment (any segment of 65k chunks or more) uses its arrays as they are.
        rows.append(matches.rows if offset == 0 else np.add(matches.rows, offset, dtype=np.int64))
        counts.append(matches.tf)
        norms.append(segment.length_norms(k1, b, average)[matches.rows])
        sizes.append(matches.sizes)
        offset += len(segment.postings.lengths)
    all_rows = _one(rows)
    if len(all_rows) == 0:
        return np.zeros(offset, dtype=np.float64)
    # Row by row, bincount adds the terms' shares in query order, as a loop over the terms would.
    weights = np.repeat(np.tile(idf, len(segments)), np.concatenate(sizes))
    # tf / (tf + norm), then times idf, in place: each temporary is as long as the postings read.
    # tf stays int32: the ufuncs convert it to float64 exactly, as astype did.
    tf = _one(counts)
    share = _one(norms)
    np.add(tf, share, out=share)
    np.divide(tf, share, out=share)
    np.multiply(weights, share, out=share)
    return np.bincount(all_rows, weights=share, minlength=offset).astype(np.float64, copy=False)


def _one(parts: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """The arrays `parts` one after another; a lone part as it is (no copy)."""
    if not parts:
        return np.zeros(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def positive_top(
    scores: npt.NDArray[np.float64], limit: int, floor: float = 0.0
) -> tuple[Rows, npt.NDArray[np.float64]]:
    """Rows of the best `limit` positive scores, and any tied with the last of them, in no
    particular order: the reader orders the candidates of every block once, ties by row.

    Only scores ``>= floor`` are looked at, when `floor` is positive: a reader passes the
    `limit`-th best score of the blocks before (`index.search.selection.Best.floor`), below which
    a chunk is beaten by `limit` others whatever its row. Most chunks of a large index score above
    0 for some term of a question (~45 % at a million chunks), but few reach that floor, so
    selecting among them costs far less than among every positive score."""
    rows = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    rows = rows[contenders(scores[rows], limit)]
    return rows.astype(np.int64), scores[rows]
