"""Merges: which segments to combine (a tiered policy, after Lucene's TieredMergePolicy), and the
combining itself, which copies what the segments hold and never embeds again.

The policy sizes a segment by its live chunks, counting tiny segments as `floor_segment_chunks`.
From the total it derives how many segments the index may keep (its budget): up to `segments_per_tier` per
tier, each tier `max_merge_at_once` times larger than the last, starting at the floor:

``allowed = sum over tiers of min(segments_per_tier, ceil(remaining / tier size))``

While more eligible segments exist, it merges the cheapest group of up to `max_merge_at_once`
of similar size. Groups are scored like Lucene's, lower being better:
``skew * total^0.05 * (live / all)^2`` with ``skew`` the largest member's share of the group
(equal sizes merge first; merged output that reclaims deleted documents is preferred). A segment
whose deleted share exceeds `deletes_allowed` is rewritten on its own to reclaim them. Segments
at least half of `max_merged_segment_chunks` are left out, so merges stay bounded.
`force_merge` asks for everything in one segment (`rag optimize`). `ceiling` is the hard limit
past the budget at which writers stop and wait for merges (`index.write.writer`).

`merge_segments` builds the merged segment's data from the sources' live documents, in the
sources' order: vectors, sentence data and BM25 postings are copied and renumbered; an
approximate (IVF) index is built only if the result reaches the approximate threshold. Out of
scope: committing the result (`index.write.writer`, which also carries over deletes that land on the
sources while they merge).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.storage.arrays import ranges
from index.storage.commits import CommitPoint, SegmentEntry
from index.storage.postings import Postings
from index.storage.segments import Segment, SegmentData, StoredDocuments


@dataclass(frozen=True)
class TieredMergePolicy:
    segments_per_tier: int = 10
    max_merge_at_once: int = 10
    floor_segment_chunks: int = 2_000
    max_merged_segment_chunks: int = 5_000_000
    deletes_allowed: float = 0.33
    backlog_segments: int = 10

    def ceiling(self, segments: Sequence[SegmentEntry]) -> int:
        """The most segments a commit may list before writers wait for merges (back-pressure):
        the budget for the index's size plus `backlog_segments`, the room merges get to fall
        behind a burst of writes. ``ceiling = allowed_segments(total size) + backlog``"""
        return self.allowed_segments(sum(self._size(entry) for entry in segments)) + self.backlog_segments

    def find_merges(self, segments: Sequence[SegmentEntry]) -> list[list[str]]:
        """Groups of segment names to merge, each group into one segment."""
        merges: list[list[str]] = []
        heavy = [
            entry
            for entry in segments
            if entry.documents and entry.deleted / entry.documents > self.deletes_allowed
        ]
        merges += [[entry.name] for entry in heavy if entry.live_documents]
        taken = {entry.name for entry in heavy}
        eligible = sorted(
            (
                entry
                for entry in segments
                if entry.name not in taken and _live_chunks(entry) < self.max_merged_segment_chunks / 2
            ),
            key=lambda entry: (-_live_chunks(entry), entry.name),
        )
        allowed = self.allowed_segments(sum(self._size(entry) for entry in segments))
        while len(eligible) > max(allowed, 1) and len(eligible) >= 2:
            best = self._best_group(eligible)
            if best is None:
                break
            merges.append([entry.name for entry in best])
            eligible = [entry for entry in eligible if entry not in best]
            allowed -= 1  # the merged segment takes one of the allowed places
        return merges

    def allowed_segments(self, total: float) -> int:
        level, remaining, allowed = float(self.floor_segment_chunks), total, 0
        while True:
            count = remaining / level
            if count < self.segments_per_tier:
                return allowed + math.ceil(count)
            allowed += self.segments_per_tier
            remaining -= self.segments_per_tier * level
            level *= self.max_merge_at_once

    def _best_group(self, eligible: Sequence[SegmentEntry]) -> list[SegmentEntry] | None:
        best: tuple[float, list[SegmentEntry]] | None = None
        for start in range(len(eligible) - 1):
            group: list[SegmentEntry] = []
            total = 0.0
            for entry in eligible[start:]:
                if len(group) == self.max_merge_at_once:
                    break
                if total + _live_chunks(entry) > self.max_merged_segment_chunks:
                    continue
                group.append(entry)
                total += self._size(entry)
            if len(group) < 2:
                continue
            skew = max(self._size(entry) for entry in group) / total
            live = sum(entry.live_documents for entry in group) / max(sum(e.documents for e in group), 1)
            score = skew * total**0.05 * live**2
            if best is None or score < best[0]:
                best = (score, group)
        return None if best is None else best[1]

    def _size(self, entry: SegmentEntry) -> float:
        return float(max(_live_chunks(entry), self.floor_segment_chunks))


def force_merge(commit: CommitPoint) -> list[list[str]]:
    """Everything in one segment, deleted documents dropped; nothing when that is so already."""
    segments = commit.segments
    if len(segments) > 1 or any(entry.deleted for entry in segments):
        return [[entry.name for entry in segments if entry.live_documents]]
    return []


def _live_chunks(entry: SegmentEntry) -> float:
    return entry.chunks * (entry.live_documents / entry.documents) if entry.documents else 0.0


def merge_segments(
    sources: Sequence[tuple[Segment, npt.NDArray[np.int64]]], commit: CommitPoint
) -> tuple[SegmentData, list[npt.NDArray[np.int64]]]:
    """The data of one segment holding the live documents of `sources` ((segment, deleted
    document rows) each), in order; and for each source, its documents' rows in the result
    (-1 for documents dropped), so deletes made meanwhile can be carried over."""
    ids: list[str] = []
    lines: list[bytes] = []
    chunk_rows, kept_chunks, row_maps = [], [], []
    sentence_spans, sentence_questions, sentence_vectors, chunk_vectors = [], [], [], []
    sentence_counts: list[npt.NDArray[np.int64]] = []
    postings_parts = []
    for segment, deleted in sources:
        keep_documents = np.ones(segment.document_count, dtype=bool)
        keep_documents[deleted] = False
        row_map = np.full(segment.document_count, -1, dtype=np.int64)
        row_map[keep_documents] = np.arange(len(ids), len(ids) + int(keep_documents.sum()))
        row_maps.append(row_map)
        for row in np.flatnonzero(keep_documents).tolist():
            ids.append(segment.ids[row])
            lines.append(segment.document_line(row))
        chunks = np.asarray(segment.chunks)
        kept = np.flatnonzero(keep_documents[chunks[:, 0]]) if len(chunks) else np.zeros(0, dtype=np.int64)
        kept_chunks.append(kept)
        renumbered = chunks[kept].copy()
        renumbered[:, 0] = row_map[renumbered[:, 0]]
        chunk_rows.append(renumbered)
        chunk_vectors.append(segment.chunk_vectors(kept))
        starts, ends = np.asarray(segment.sentence_ptr[kept]), np.asarray(segment.sentence_ptr[kept + 1])
        sentence_counts.append(ends - starts)
        sentence_rows = ranges(starts, ends)
        sentence_spans.append(np.asarray(segment.sentence_spans[sentence_rows]).reshape(-1, 2))
        sentence_questions.append(np.asarray(segment.sentence_questions[sentence_rows], dtype=bool))
        sentence_vectors.append(np.asarray(segment.sentence_vectors[sentence_rows], dtype=np.float32))
        postings_parts.append((segment.postings, kept))
    counts = np.concatenate(sentence_counts) if sentence_counts else np.zeros(0, dtype=np.int64)
    pointer = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=pointer[1:])
    dimension = commit.dimension
    data = SegmentData(
        documents=StoredDocuments(ids, lines),
        chunks=np.concatenate(chunk_rows).astype(np.int64, copy=False).reshape(-1, 3),
        chunk_vectors=np.concatenate(chunk_vectors).astype(np.float32, copy=False).reshape(-1, dimension),
        sentence_ptr=pointer,
        sentence_spans=np.concatenate(sentence_spans).astype(np.int64, copy=False).reshape(-1, 2),
        sentence_questions=np.concatenate(sentence_questions).astype(bool, copy=False),
        sentence_vectors=np.concatenate(sentence_vectors)
        .astype(np.float32, copy=False)
        .reshape(-1, dimension),
        postings=Postings.merged(postings_parts),
        settings=commit.settings,
        model_name=commit.model_name,
        dimension=dimension,
    )
    return data, row_maps
