"""What a shard is asked and what it answers: plain, picklable data (a remote call's payload).

A sharded search asks each shard twice (`index.sharding.coordinator`):

1. `Shard.state(terms)` -> `ShardState`: the commit the shard answers from (`version`), and what
   the whole collection's statistics are summed from: its live chunks, their total length and
   each term's document frequency (`CollectionStatistics`, summed over shards with
   `CollectionStatistics.summed`), and whether any live document has a date.
2. `Shard.candidates(CandidateRequest)` -> `ShardCandidates`: for that same commit, the dense
   top-`limit` and the BM25 top-`limit` (scored with the *global* statistics) among the chunks
   `filter` allows, and everything the later stages read about each returned passage: its chunk
   (text and offsets), its cosine with the question, its sentences (offsets, question flags,
   cosines with the question) and its document. Cosines, not vectors: the later stages only take
   cosines with the question's vector, and a cosine is 4 bytes where a vector is 1,536.

A context window (`index.search.context`) takes a third call, `Shard.windows(WindowRequest)`:
the span of each hit's chunk widened by `n` chunks of its document on each side. Document search
with feedback takes `Shard.vectors(VectorRequest)` (the feedback passage's stored vector) and a
second `candidates` call with the moved vector in `also`.

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
    live_only: bool = False  # answer only if `version` is the live commit (no `state` call came first)
    # Further unit vectors whose dense top-`limit` and cosines are returned too, in `also`
    # (document search with feedback: the moved vector beside the question's).
    also: tuple[Vectors, ...] = ()


@dataclass(frozen=True)
class VectorAnswer:
    """For one of `CandidateRequest.also`: its dense candidates, and the cosines with it of every
    passage of the answer and of their sentences (same order as the answer's own columns)."""

    dense: tuple[tuple[int, float], ...]  # (position in `chunks`, cosine), best first
    cosines: npt.NDArray[np.float32]  # (passages,)
    sentence_cosines: npt.NDArray[np.float32]  # (sentences,)


@dataclass(frozen=True)
class ShardCandidates:
    """A shard's candidates, column by column: a few arrays pickle (and travel between
    processes) at memory speed, where one small object per passage cost tens of milliseconds a
    query. Passage i is `chunks[i]`; its sentences are rows ``sentence_ptr[i]:sentence_ptr[i + 1]``
    of the sentence columns."""

    shard: int
    version: str
    chunks: tuple[Chunk, ...]  # every passage of `dense` and `lexical`, once
    cosines: npt.NDArray[np.float32]  # (passages,): each passage's cosine with the question
    sentence_ptr: npt.NDArray[np.int64]  # (passages + 1,)
    sentence_spans: npt.NDArray[np.int64]  # (sentences, 2): start, end in the document's text
    sentence_questions: npt.NDArray[np.bool_]  # (sentences,)
    sentence_cosines: npt.NDArray[np.float32]  # (sentences,): each sentence's cosine with the question
    dense: tuple[tuple[int, float], ...]  # (position in `chunks`, cosine), best first
    lexical: tuple[tuple[int, float], ...]  # (position in `chunks`, BM25 score), best first
    documents: dict[str, Document]  # the passages' documents, by id
    also: tuple[VectorAnswer, ...] = ()  # one per `CandidateRequest.also`


@dataclass(frozen=True)
class WindowRequest:
    version: str  # the shard's commit the hits came from
    chunks: tuple[tuple[str, int], ...]  # (document id, chunk start) of each hit on the shard
    n: int  # neighbouring chunks on each side


@dataclass(frozen=True)
class VectorRequest:
    version: str  # the shard's commit the passages came from
    chunks: tuple[tuple[str, int], ...]  # (document id, chunk start) of each passage on the shard
