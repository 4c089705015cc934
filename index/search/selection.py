"""Choosing the best candidates across segments, with arrays rather than per-segment loops.

In scope: the best `limit` of several segments' candidates (`top`, ties to the lower row; `Best`
gathers them part by part and says which scores can no longer make it), the one scan that gives every exact segment's cosines for a query (`ExactScan`), and the blocks of
consecutive segments BM25 scores in one pass (`blocks`). Out of scope: which segments are live
and what their rows are (`index.search.reader`), how a segment stores its vectors (`index.storage.segments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.embedding import Vectors
from index.storage.arrays import contenders
from index.storage.fields import Mask
from index.storage.segments import FlatVectors, Segment

# A filtered scan gathers the allowed chunks' vectors when they are under 1 / GATHER_SHARE of all.
GATHER_SHARE = 4


def top(
    rows: list[npt.NDArray[np.int64]], scores: list[npt.NDArray[np.float32]], limit: int
) -> tuple[list[int], list[float]]:
    """The `limit` best of every segment's candidates, best first (ties: lower row first)."""
    if not rows:
        return [], []
    all_rows, all_scores = np.concatenate(rows), np.concatenate(scores)
    kept = contenders(all_scores, limit)
    all_rows, all_scores = all_rows[kept], all_scores[kept]
    order = np.lexsort((all_rows, -all_scores))[:limit]
    return all_rows[order].tolist(), all_scores[order].astype(np.float64).tolist()


class Best:
    """The candidates of several parts (blocks of segments) gathered for one top `limit`.

    Scores are compared as float32 (what `top` ranks). Invariant: once `limit` scores are
    gathered, `floor` is the float32 just below the `limit`-th best of them (0 before), so a later
    candidate scoring below `floor`, even as a float64 before its cast (it rounds to at most that
    float32), is beaten by `limit` others whatever its row and cannot make the top `limit`, while
    one tied with the `limit`-th best (ties go to the lower row) is at or above it. A part may
    therefore leave out what scores below `floor`; `result` is `top` of what was gathered, the
    same as `top` of every part's full candidates."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: list[npt.NDArray[np.int64]] = []
        self.scores: list[npt.NDArray[np.float32]] = []
        self.floor = 0.0
        self._count = 0

    def add(self, rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float32]) -> None:
        self.rows.append(rows)
        self.scores.append(scores)
        self._count += len(scores)
        if self._count >= self.limit > 0 and len(scores):
            gathered = np.concatenate(self.scores).astype(np.float32, copy=False)
            kth = np.partition(gathered, len(gathered) - self.limit)[len(gathered) - self.limit]
            self.floor = float(np.nextafter(kth, np.float32(-np.inf)))

    def result(self) -> tuple[list[int], list[float]]:
        return top(self.rows, self.scores, self.limit)


def blocks(counts: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Consecutive runs ``first:last`` of items with `counts`, each summing to at most `size`
    (an item larger than `size` is a run alone)."""
    runs: list[tuple[int, int]] = []
    first, total = 0, 0
    for index, count in enumerate(counts):
        if index > first and total + count > size:
            runs.append((first, index))
            first, total = index, 0
        total += count
    if counts:
        runs.append((first, len(counts)))
    return runs


@dataclass(frozen=True)
class ExactScan:
    """One query's scan of every exact segment: their cosines laid end to end in one array, whose
    best are then taken once, so a query pays per chunk rather than per segment (a search of each
    segment cost ~50 us apiece in FAISS's heap and call overhead). Position `p` of part `i` (the
    positions `starts[i]:starts[i + 1]`) is global row ``p + shifts[i]``; `deleted` lists the
    positions of deleted chunks."""

    parts: list[FlatVectors]
    starts: npt.NDArray[np.int64]
    shifts: npt.NDArray[np.int64]
    deleted: npt.NDArray[np.int64]

    @classmethod
    def of(
        cls,
        segments: Sequence[Segment],
        deleted_chunks: Sequence[npt.NDArray[np.int64]],
        bases: npt.NDArray[np.int64],
    ) -> ExactScan:
        """The scan of the exact ones of `segments` (global rows from `bases`), the chunk rows
        `deleted_chunks[i]` of segment i left out."""
        parts, starts, shifts, deleted = [], [0], [], []
        for index, segment in enumerate(segments):
            if isinstance(segment.vectors, FlatVectors):
                start = starts[-1]
                parts.append(segment.vectors)
                shifts.append(int(bases[index]) - start)
                deleted.append(deleted_chunks[index] + start)
                starts.append(start + segment.chunk_count)
        return cls(
            parts,
            np.array(starts, dtype=np.int64),
            np.array(shifts, dtype=np.int64),
            np.concatenate(deleted).astype(np.int64) if deleted else np.zeros(0, dtype=np.int64),
        )

    def search(
        self, query: Vectors, limit: int, allowed: Mask | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Global rows and cosines of the `limit` live chunks nearest `query` (a contiguous
        float32 unit vector), with any tied with the last of them, in no order; with `allowed`
        (a mask over global rows, deleted chunks already out), only among the allowed ones.

        A filter that leaves few chunks is answered from theirs alone: gathering a chunk's
        vector costs a few times scanning it, so below `1 / GATHER_SHARE` of the rows the
        gather is cheaper than the scan."""
        total = int(self.starts[-1])
        if allowed is None:
            cosines = self._scan(query)
            cosines[self.deleted] = -np.inf
            return self._best(cosines, limit)
        keep = self._positions(allowed)
        count = int(keep.sum())
        if count * GATHER_SHARE >= total:
            cosines = self._scan(query)
            cosines[~keep] = -np.inf
            return self._best(cosines, limit)
        positions = np.flatnonzero(keep)
        part = np.searchsorted(self.starts, positions, side="right") - 1
        gathered = np.empty(len(positions), dtype=np.float32)
        for index in np.unique(part).tolist():
            inside = np.flatnonzero(part == index)
            local = positions[inside] - self.starts[index]
            gathered[inside] = self.parts[index].inner_products_of(local, query)
        best = contenders(gathered, limit)
        return positions[best] + self.shifts[part[best]], gathered[best]

    def _scan(self, query: Vectors) -> npt.NDArray[np.float32]:
        cosines = np.empty(int(self.starts[-1]), dtype=np.float32)
        for vectors, start, end in zip(
            self.parts, self.starts[:-1].tolist(), self.starts[1:].tolist(), strict=True
        ):
            vectors.inner_products(query, cosines[start:end])
        return cosines

    def _best(
        self, cosines: npt.NDArray[np.float32], limit: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        positions = contenders(cosines, limit)
        positions = positions[cosines[positions] > -np.inf]
        part = np.searchsorted(self.starts, positions, side="right") - 1
        return positions + self.shifts[part], cosines[positions]

    def _positions(self, allowed: Mask) -> Mask:
        """`allowed` (over global rows) laid out as this scan's positions."""
        keep = np.zeros(int(self.starts[-1]), dtype=bool)
        for start, end, shift in zip(
            self.starts[:-1].tolist(), self.starts[1:].tolist(), self.shifts.tolist(), strict=True
        ):
            keep[start:end] = allowed[start + shift : end + shift]
        return keep
