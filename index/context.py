"""Context windows: widen a hit's passage by its neighbouring chunks in the same document.

`widen_outcome(outcome, data, n)` replaces each hit's chunk by the union span of the chunk and
up to `n` chunks before and after it in its document: `document.text[min_start:max_end]`. Chunks
overlap, so the union is taken over offsets rather than by joining texts: no overlapping text
is repeated and `text[start:end]` stays exact. The answer sentence and the scores are kept.

Out of scope: widening across documents, and merging two hits whose widened spans overlap
(each hit keeps its own window; de-duplication already happened in retrieval).
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from index.building import IndexData
from index.chunking import Chunk
from index.retrieval import Hit, SearchOutcome


class ChunkNeighbours:
    """Each document's chunks in text order, to find a chunk's neighbours in O(1)."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        by_document: dict[str, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            by_document[chunk.document_id].append(chunk)
        self._ordered = {
            doc: sorted(items, key=lambda c: (c.start, c.end)) for doc, items in by_document.items()
        }
        self._position = {chunk.id: i for items in self._ordered.values() for i, chunk in enumerate(items)}

    def window(self, chunk: Chunk, n: int) -> tuple[int, int]:
        """(start, end) of the union of `chunk` and up to `n` chunks on each side of it."""
        ordered = self._ordered.get(chunk.document_id)
        position = self._position.get(chunk.id)
        if n <= 0 or ordered is None or position is None:
            return chunk.start, chunk.end
        window = ordered[max(0, position - n) : position + n + 1]
        return min(c.start for c in window), max(c.end for c in window)


# One neighbour table per index generation; dropped with the generation's data.
_tables: dict[int, ChunkNeighbours] = {}
_tables_lock = threading.Lock()


def neighbours_of(data: IndexData) -> ChunkNeighbours:
    key = id(data)
    with _tables_lock:
        table = _tables.get(key)
        if table is None:
            table = _tables[key] = ChunkNeighbours(data.chunks)
            weakref.finalize(data, _tables.pop, key, None)
    return table


def widened_chunk(data: IndexData, chunk: Chunk, n: int) -> Chunk:
    start, end = neighbours_of(data).window(chunk, n)
    if (start, end) == (chunk.start, chunk.end):
        return chunk
    text = data.documents[chunk.document_id].text[start:end]
    return Chunk(f"{chunk.document_id}#{start}-{end}", chunk.document_id, start, end, text)


def widen_outcome(outcome: SearchOutcome, data: IndexData, n: int) -> SearchOutcome:
    """The outcome with every hit's passage widened by `n` neighbouring chunks (0: unchanged)."""
    if n <= 0:
        return outcome
    hits: list[Hit] = [replace(hit, chunk=widened_chunk(data, hit.chunk, n)) for hit in outcome.hits]
    return replace(outcome, hits=hits)
