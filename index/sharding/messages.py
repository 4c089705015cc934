"""What a shard is asked and what it answers: plain, picklable data (a remote call's payload).

A sharded search asks each shard twice (`index.sharding.coordinator`):

1. `Shard.state(terms)` -> `ShardState`: the commit the shard answers from (`version`), and what
   the whole collection's statistics are summed from: its live chunks, their total length and
   each term's document frequency (`CollectionStatistics`, summed over shards with
   `CollectionStatistics.summed`), and whether any live document has a date.
2. `Shard.candidates(CandidateRequest)` -> `ShardCandidates`: for that same commit, the dense
   top-`limit` and the BM25 top-`limit` (scored with the *global* statistics) among the chunks
   `filter` allows, and everything the later stages read about each returned passage: its chunk
   (text and offsets), vector, sentences (offsets, question flags, vectors) and its document.

A context window (`index.search.context`) takes a third call, `Shard.windows(WindowRequest)`:
the span of each hit's chunk widened by `n` chunks of its document on each side.

Only ints, floats, strings, numpy arrays and frozen dataclasses of them (`Chunk`, `Document`,
`Filter`, `CollectionStatistics`): no readers, no open files. Out of scope: computing them
(`index.sharding.shard`) and merging them (`index.sharding.gathered`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Vectors
from index.search.filters import Filter
from index.storage.postings import CollectionStatistics
from index.text.chunking import Chunk


@dataclass(frozen=True)
class ShardState:
    shard: int
    version: str  # the shard's commit that answers this query's second call too
    statistics: CollectionStatistics  # the shard's live chunks, for the query's terms
    has_dates: bool  # whether some live document of the shard has a publication date


@dataclass(frozen=True)
class CandidateRequest:
    version: str  # the shard's commit to answer from: its `ShardState.version`
    vector: Vectors  # the question's unit vector (1-D float32)
    terms: tuple[str, ...]  # the question's analysed terms, in order, repeats kept
    statistics: CollectionStatistics  # the whole collection's (every shard's) for `terms`
    limit: int  # candidates per signal
    k1: float
    b: float
    filter: Filter | None  # what the search keeps to (the request's and the question's dates)
    dense: bool  # whether to return the dense candidates
    lexical: bool  # whether to return the BM25 candidates


@dataclass(frozen=True)
class ShardPassage:
    """One candidate passage: views into its `ShardCandidates`' arrays."""

    chunk: Chunk
    vector: Vectors  # (dimension,) float32
    sentence_spans: npt.NDArray[np.int64]  # (m, 2): start, end in the document's text
    sentence_questions: npt.NDArray[np.bool_]  # (m,)
    sentence_vectors: Vectors  # (m, dimension) float32


@dataclass(frozen=True)
class ShardCandidates:
    """A shard's candidates, column by column: a few large arrays pickle (and travel between
    processes) at memory speed, where one small array per passage cost tens of milliseconds a
    query. `passages()` gives each passage's view."""

    shard: int
    version: str
    chunks: tuple[Chunk, ...]  # every passage of `dense` and `lexical`, once
    vectors: Vectors  # (passages, dimension) float32
    sentence_ptr: npt.NDArray[np.int64]  # (passages + 1,): passage i's sentences are ptr[i]:ptr[i + 1]
    sentence_spans: npt.NDArray[np.int64]  # (sentences, 2)
    sentence_questions: npt.NDArray[np.bool_]  # (sentences,)
    sentence_vectors: Vectors  # (sentences, dimension) float32
    dense: tuple[tuple[int, float], ...]  # (position in `chunks`, cosine), best first
    lexical: tuple[tuple[int, float], ...]  # (position in `chunks`, BM25 score), best first
    documents: dict[str, Document]  # the passages' documents, by id

    def passages(self) -> tuple[ShardPassage, ...]:
        bounds = self.sentence_ptr.tolist()
        return tuple(
            ShardPassage(
                chunk,
                self.vectors[position],
                self.sentence_spans[bounds[position] : bounds[position + 1]],
                self.sentence_questions[bounds[position] : bounds[position + 1]],
                self.sentence_vectors[bounds[position] : bounds[position + 1]],
            )
            for position, chunk in enumerate(self.chunks)
        )


@dataclass(frozen=True)
class WindowRequest:
    version: str  # the shard's commit the hits came from
    chunks: tuple[tuple[str, int], ...]  # (document id, chunk start) of each hit on the shard
    n: int  # neighbouring chunks on each side
