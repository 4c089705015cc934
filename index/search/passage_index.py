"""What the retrieval stages read of an index: the `PassageIndex` protocol, and its small records.

The stages (`index.search.retrieval` and those it wires: `query`, `candidates`, `fusion`,
`answers`, `answerability`, `question_dates`) read an index only through these methods, over
passage *rows* (ints the index numbers its passages by) and global sentence rows. Two classes
implement it: `index.search.reader.IndexReader` (one commit of one index), and
`index.sharding.gathered.GatheredCandidates` (the candidates of one query, gathered from the
shards of a sharded index), so single-process and sharded search run the same stages.

Invariants an implementation keeps: `dense_search` and `lexical_search` return rows best first,
ties to the lower row; `statistics(terms)` are those of the whole collection (every live chunk),
whatever the rows returned; `sentences(row)` and `scored_passages` name the same global sentence
rows that `sentence_cosines` scores. A cosine is ``dot(vector, v)`` of the question's unit vector
and a stored one in float32, the stored vectors' precision. The stages only ever ask for cosines
with the question's vector, never for vectors: an implementation that holds the cosines already
(the shards computed them) answers without any vector, and refuses another vector. Out of scope:
how rows are numbered and stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Vectors
from index.search.filters import Filter
from index.storage.fields import Mask
from index.storage.postings import CollectionStatistics
from index.text.chunking import Chunk


class Sentence(NamedTuple):
    """A NamedTuple, not a dataclass: a search makes dozens per answer span."""

    row: int  # global sentence row
    start: int
    end: int
    is_question: bool


@dataclass(frozen=True)
class SentenceCosines:
    """The sentences of some passages, passage after passage: passage i has `counts[i]` of them."""

    counts: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]  # global sentence rows
    cosines: npt.NDArray[np.float32]  # with the question's vector, one per row
    questions: npt.NDArray[np.bool_]  # whether each is itself a question


@dataclass(frozen=True)
class PassageCosines:
    """Some of the rows a caller asked for (those at `positions` in its list), with their cosines
    and, when asked for and stored, their sentences' (None: no sentence vectors)."""

    positions: npt.NDArray[np.int64]
    cosines: npt.NDArray[np.float32]
    sentences: SentenceCosines | None


class PassageIndex(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def has_dates(self) -> bool:
        """Whether some live document has a publication date."""
        ...

    def allowed(self, filter: Filter) -> Mask:
        """Which rows a search under `filter` may answer from."""
        ...

    def statistics(self, terms: Sequence[str]) -> CollectionStatistics: ...

    @property
    def searches_in_parallel(self) -> bool:
        """Whether a query's dense and BM25 searches pay for running side by side
        (`index.search.parallel`)."""
        ...

    def dense_search(
        self, vector: Vectors, limit: int, allowed: Mask | None = None
    ) -> tuple[list[int], list[float]]: ...

    def lexical_search(
        self,
        terms: Sequence[str],
        limit: int,
        k1: float,
        b: float,
        statistics: CollectionStatistics | None = None,
        allowed: Mask | None = None,
    ) -> tuple[list[int], list[float]]: ...

    def chunk(self, row: int) -> Chunk: ...

    def document_id_of(self, row: int) -> str: ...

    def document(self, document_id: str) -> Document | None: ...

    def sentences(self, row: int) -> list[Sentence]: ...

    def passage_cosines(self, vector: Vectors, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        """``dot(vector, v)`` of each passage row's vector, in the order of `rows`."""
        ...

    def sentence_cosines(self, vector: Vectors, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        """``dot(vector, v)`` of each global sentence row's vector, in the order of `rows`."""
        ...

    def scored_passages(
        self, vector: Vectors, rows: Sequence[int], with_sentences: bool
    ) -> Iterator[PassageCosines]:
        """Every one of `rows` once, in parts (a segment each, say), with its cosine and, with
        `with_sentences`, its sentences'."""
        ...

    def chunk_vectors(self, rows: Sequence[int]) -> Vectors:
        """The passages' vectors themselves: only document search's feedback reads them."""
        ...
