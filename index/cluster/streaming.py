"""Handing a cluster build's vectors to the writer one segment at a time, as they arrive.

The cluster's pipeline (`index.cluster.embedding`) yields `EmbeddedBatch`es of (segment, text
key, vector) rows in the order of the build's plan: every row of segment s comes before any row
of segment s + 1. `SegmentStream.take(segment, keys)` pulls batches until it holds the vectors of
`keys`, hands them over and lets go of them; `finish(segment)` lets go of whatever that segment
left (a text that two layout batches of one segment both embedded). Since the writer asks for a
segment's texts longest first, its first request may pull that whole segment's output: the stream
holds at most one segment's vectors plus one batch of the next (`held` now, `peak` the most at
once), never the build's.

Out of scope: running the pipeline, and which texts a build needs (the writer decides;
`index.write.writer`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from index.embedding import Embedder, Vectors
from index.errors import IndexError_
from index.write.building import text_key


class ClusterModeError(IndexError_):
    """A build the cluster cannot run as asked, or that did not embed what the writer needs."""


@dataclass(frozen=True)
class EmbeddedBatch:
    """Rows of the pipeline's output: the segment each text belongs to, its key, its vector and
    the node whose actor embedded it."""

    segments: npt.NDArray[np.int64]
    keys: Sequence[str]
    vectors: Vectors
    nodes: Sequence[str]


@dataclass
class SegmentStream:
    batches: Iterator[EmbeddedBatch]
    held: int = 0  # vectors the stream holds now
    peak: int = 0  # the most it held at once
    embedded: int = 0  # vectors received from the pipeline
    nodes: set[str] = field(default_factory=set)
    _by_segment: dict[int, dict[str, Vectors]] = field(default_factory=dict)
    _last: int = -1  # the latest segment a row arrived for

    def take(self, segment: int, keys: Sequence[str]) -> Vectors:
        """The vectors of `keys` (texts of `segment`), in order; ClusterModeError when the
        pipeline moved past the segment, or ended, without embedding one of them."""
        mine = self._by_segment.setdefault(segment, {})
        missing = {key for key in keys if key not in mine}
        while missing:
            if self._last > segment:  # order is preserved: the segment's rows are all in
                raise _not_embedded(len(missing))
            batch = next(self.batches, None)
            if batch is None:
                raise _not_embedded(len(missing))
            self._receive(batch)
            missing = {key for key in missing if key not in mine}
        taken = {key: mine.pop(key) for key in dict.fromkeys(keys)}
        self.held -= len(taken)
        return np.stack([taken[key] for key in keys]) if keys else np.zeros((0, 0), np.float32)

    def finish(self, segment: int) -> None:
        """Let go of what is left of `segment` and of the segments before it."""
        for number in [number for number in self._by_segment if number <= segment]:
            self.held -= len(self._by_segment.pop(number))

    def _receive(self, batch: EmbeddedBatch) -> None:
        for segment, key, vector in zip(batch.segments, batch.keys, batch.vectors, strict=True):
            rows = self._by_segment.setdefault(int(segment), {})
            if key not in rows:
                self.held += 1
            # A copy, so a row kept for later does not pin its whole batch's array in memory.
            rows[key] = np.array(vector, dtype=np.float32)
            self._last = max(self._last, int(segment))
        self.embedded += len(batch.keys)
        self.nodes.update(batch.nodes)
        self.peak = max(self.peak, self.held)


@dataclass(frozen=True)
class StreamedSegment:
    """The embedder one segment of a plan is built with: its vectors come off the stream; chunk
    lengths and the model's name and dimension from `local`, the model the cluster runs."""

    local: Embedder
    stream: SegmentStream
    segment: int

    @property
    def model_name(self) -> str:
        return self.local.model_name

    @property
    def dimension(self) -> int:
        return self.local.dimension

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.stream.take(self.segment, [text_key(text) for text in texts])


def _not_embedded(count: int) -> ClusterModeError:
    return ClusterModeError(
        f"the cluster did not embed {count} text(s) the build needs; nothing was committed"
    )
