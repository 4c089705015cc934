"""Context windows: widen a hit's passage by its neighbouring chunks in the same document.

`widen_outcome(outcome, reader, n)` replaces each hit's chunk by the union span of the chunk and
up to `n` chunks before and after it in its document: `document.text[min_start:max_end]`. Chunks
overlap, so the union is taken over offsets rather than by joining texts: no overlapping text
is repeated and `text[start:end]` stays exact. The answer sentence and the scores are kept. A
document's chunks are consecutive rows of its segment, in text order, so the neighbours are
found without any table.

Out of scope: widening across documents, and merging two hits whose widened spans overlap
(each hit keeps its own window; de-duplication already happened in retrieval).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from index.search.retrieval import Hit, SearchOutcome
from index.text.chunking import Chunk


class ChunkWindows(Protocol):
    """What widening reads: an `IndexReader`, or a sharded search's windows
    (`index.sharding.coordinator.ShardedSearcher.windows`)."""

    def chunk_window(self, row: int, n: int) -> tuple[int, int]: ...


def widen_outcome(outcome: SearchOutcome, reader: ChunkWindows, n: int) -> SearchOutcome:
    """The outcome with every hit's passage widened by `n` neighbouring chunks (0: unchanged)."""
    if n <= 0:
        return outcome
    hits: list[Hit] = [replace(hit, chunk=_widened(reader, hit, n)) for hit in outcome.hits]
    return replace(outcome, hits=hits)


def _widened(reader: ChunkWindows, hit: Hit, n: int) -> Chunk:
    start, end = reader.chunk_window(hit.row, n)
    chunk = hit.chunk
    if (start, end) == (chunk.start, chunk.end):
        return chunk
    return Chunk(
        f"{chunk.document_id}#{start}-{end}", chunk.document_id, start, end, hit.document.text[start:end]
    )
