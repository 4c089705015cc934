"""One shard's side of a sharded search: two calls, each plain data in and out.

`Shard` holds one ordinary index (`IndexStore`) and answers `state` and `candidates`
(`index.sharding.messages`); a Ray Serve deployment will expose the same two methods.

What a query sees: `state` opens the shard's live commit (re-opening only when CURRENT names
another, re-using what the previous reader shares) and says which one it is; `candidates`
answers from exactly that commit (`CandidateRequest.version`), even if a write has committed on
the shard in between: the shard keeps its last `KEPT_READERS` readers. So the statistics and the
candidates of one query always come from the same commit of each shard. A version it no longer
keeps is `ShardVersionGoneError` (the coordinator asks again). A request marked `live_only`
(the coordinator skipped `state`, knowing the version already) is answered only while that
version is the live commit, else refused the same way. A shard no document was written
to yet (a small index over many shards) answers as an empty index, as `EMPTY_VERSION`. The BM25 scores use the request's
global statistics, so they are those one index of every shard's chunks gives (`index.storage.postings`).
`candidates` also answers for the further vectors of `CandidateRequest.also`, and `vectors`
gives passages' stored vectors (document search with feedback, `index.sharding.coordinator`).

Out of scope: merging shards' answers (`index.sharding.gathered`), writes (`index.sharding.writer`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeGuard

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Vectors
from index.errors import IndexError_, IndexNotFoundError
from index.search.reader import IndexReader
from index.sharding.messages import (
    CandidateRequest,
    ShardCandidates,
    ShardState,
    VectorAnswer,
    VectorRequest,
    WindowRequest,
)
from index.storage.arrays import ranges
from index.storage.postings import CollectionStatistics
from index.storage.store import IndexStore

KEPT_READERS = 4  # commits a shard still answers from after a newer one is live
OPEN_ATTEMPTS = 3  # opens of the live commit while newer commits supersede it
EMPTY_VERSION = "empty"  # the version of a shard nothing was written to yet


class ShardVersionGoneError(IndexError_):
    """A shard was asked for candidates of a commit it no longer keeps a reader of."""


class Shard:
    def __init__(self, shard: int, store: IndexStore) -> None:
        self.shard = shard
        self.store = store
        self._readers: OrderedDict[str, IndexReader] = OrderedDict()  # by version, newest last
        self._lock = threading.Lock()  # guards `_readers`: a deployment serves calls concurrently
        self._opening = threading.Lock()  # held while a new commit is opened

    def state(self, terms: Sequence[str]) -> ShardState:
        """The live commit's version and what the global statistics for `terms` sum from; a
        shard nothing was written to yet is `EMPTY_VERSION`, with no chunks."""
        try:
            reader = self.live()
        except IndexNotFoundError:
            return ShardState(self.shard, EMPTY_VERSION, CollectionStatistics.of([], terms), False)
        return ShardState(self.shard, reader.version, reader.statistics(terms), reader.has_dates)

    def candidates(self, request: CandidateRequest) -> ShardCandidates:
        """The dense and BM25 candidates of commit `request.version` (module docstring); with
        `request.live_only`, only while that commit is the live one."""
        if request.live_only and (live := self._live_version()) != request.version:
            raise ShardVersionGoneError(
                f"shard {self.shard}'s live commit is {live}, not {request.version}: ask for its state"
            )
        if request.version == EMPTY_VERSION:
            return _no_candidates(self.shard, len(request.also))
        reader = self.reader_at(request.version)
        allowed = None if request.filter is None else reader.allowed(request.filter)
        dense_rows, dense_scores = (
            reader.dense_search(request.vector, request.limit, allowed) if request.dense else ([], [])
        )
        lexical_rows, lexical_scores = (
            reader.lexical_search(
                request.terms, request.limit, request.k1, request.b, request.statistics, allowed
            )
            if request.lexical
            else ([], [])
        )
        also_found = [reader.dense_search(vector, request.limit, allowed) for vector in request.also]
        also_rows = [row for found_rows, _ in also_found for row in found_rows]
        rows = list(dict.fromkeys(dense_rows + lexical_rows + also_rows))
        position = {row: index for index, row in enumerate(rows)}
        chunks = tuple(reader.chunk(row) for row in rows)
        scored = _scored(reader, np.ascontiguousarray(request.vector, dtype=np.float32), rows)
        also = []
        for vector, (found_rows, found_scores) in zip(request.also, also_found, strict=True):
            cosines, *_, sentence_cosines = _scored(
                reader, np.ascontiguousarray(vector, dtype=np.float32), rows
            )
            also.append(VectorAnswer(_listed(position, found_rows, found_scores), cosines, sentence_cosines))
        return ShardCandidates(
            self.shard,
            reader.version,
            chunks,
            *scored,
            _listed(position, dense_rows, dense_scores),
            _listed(position, lexical_rows, lexical_scores),
            {
                document_id: _document(reader, document_id)
                for document_id in sorted({chunk.document_id for chunk in chunks})
            },
            tuple(also),
        )

    def windows(self, request: WindowRequest) -> tuple[tuple[int, int], ...]:
        """(start, end) of each chunk of `request` widened by `request.n` chunks of its document on
        each side (`IndexReader.chunk_window`), from commit `request.version`."""
        reader = self.reader_at(request.version)
        return tuple(reader.chunk_window(_row_of(reader, *chunk), request.n) for chunk in request.chunks)

    def vectors(self, request: VectorRequest) -> Vectors:
        """The stored vector of each passage of `request` (rows in its order), from commit
        `request.version`."""
        reader = self.reader_at(request.version)
        return reader.chunk_vectors([_row_of(reader, *chunk) for chunk in request.chunks])

    def _live_version(self) -> str:
        try:
            return self.live().version
        except IndexNotFoundError:
            return EMPTY_VERSION

    def live(self) -> IndexReader:
        """A reader on the shard's live commit, kept for later `candidates` calls. A new commit is
        opened by one call at a time while the others that need it wait; calls answering from a
        commit already open (`reader_at`) go on meanwhile, so a write does not stall the queries
        in flight on the commit before it."""
        newest = self._newest()
        if self._is_live(newest):
            return newest
        with self._opening:
            newest = self._newest()  # another call may have opened it while this one waited
            if self._is_live(newest):
                return newest
            reader = self._open(newest)
            with self._lock:
                self._readers[reader.version] = reader
                self._readers.move_to_end(reader.version)
                while len(self._readers) > KEPT_READERS:
                    self._readers.popitem(last=False)
            return reader

    def _newest(self) -> IndexReader | None:
        with self._lock:
            return next(reversed(self._readers.values()), None)

    def _is_live(self, reader: IndexReader | None) -> TypeGuard[IndexReader]:
        """Whether `reader` is on the commit CURRENT names now."""
        return reader is not None and self.store.current_name() == reader.commit.file_name

    def _open(self, newest: IndexReader | None) -> IndexReader:
        """A reader on the live commit. Clean-up keeps only the live commit and the one before
        it (`index.storage.store`): when two commits land between reading CURRENT and opening
        its files (a shard's writer and its merge both committing), the files may be gone; the
        commit CURRENT names by then is opened instead."""
        for _ in range(OPEN_ATTEMPTS - 1):
            read = self.store.current_name()
            try:
                return IndexReader.open(self.store, newest)
            except (IndexError_, OSError):
                if self.store.current_name() == read:
                    raise
        return IndexReader.open(self.store, newest)

    def reader_at(self, version: str) -> IndexReader:
        with self._lock:
            reader = self._readers.get(version)
        if reader is None:
            raise ShardVersionGoneError(
                f"shard {self.shard} no longer keeps commit {version}: ask for its state again"
            )
        return reader


def _listed(
    position: dict[int, int], rows: Sequence[int], scores: Sequence[float]
) -> tuple[tuple[int, float], ...]:
    """A candidate list as `ShardCandidates` sends it: (position in its chunks, score), best first."""
    return tuple((position[row], score) for row, score in zip(rows, scores, strict=True))


def _row_of(reader: IndexReader, document_id: str, start: int) -> int:
    """The global row of the live chunk of `document_id` starting at `start`."""
    found = reader.location(document_id)
    if found is not None:
        index, document_row = found
        segment = reader.segments[index]
        first, last = int(segment.chunk_ptr[document_row]), int(segment.chunk_ptr[document_row + 1])
        local = first + int(np.searchsorted(segment.chunks[first:last, 1], start))
        if local < last and int(segment.chunks[local, 1]) == start:
            return int(reader.bases[index]) + local
    raise LookupError(f"no chunk of {document_id!r} starts at {start} in {reader.version}")


Scored = tuple[
    npt.NDArray[np.float32],  # each row's cosine
    npt.NDArray[np.int64],  # sentence_ptr
    npt.NDArray[np.int64],  # sentence spans
    npt.NDArray[np.bool_],  # sentence question flags
    npt.NDArray[np.float32],  # sentence cosines
]


def _scored(reader: IndexReader, vector: Vectors, rows: Sequence[int]) -> Scored:
    """The `ShardCandidates` columns of `rows` after their chunks: cosines with `vector`, and
    their sentences passage after passage (`rows` order), array by array."""
    cosines = np.zeros(len(rows), dtype=np.float32)
    counts = np.zeros(len(rows), dtype=np.int64)
    parts = list(reader.scored_passages(vector, rows, with_sentences=True))
    for part in parts:
        cosines[part.positions] = part.cosines
        if part.sentences is not None:
            counts[part.positions] = part.sentences.counts
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    sentence_rows = np.zeros(int(ptr[-1]), dtype=np.int64)
    sentence_cosines = np.zeros(int(ptr[-1]), dtype=np.float32)
    questions = np.zeros(int(ptr[-1]), dtype=bool)
    for part in parts:
        if part.sentences is not None:
            where = ranges(ptr[part.positions], ptr[part.positions + 1])
            sentence_rows[where] = part.sentences.rows
            sentence_cosines[where] = part.sentences.cosines
            questions[where] = part.sentences.questions
    return cosines, ptr, reader.sentence_spans(sentence_rows), questions, sentence_cosines


def _document(reader: IndexReader, document_id: str) -> Document:
    document = reader.document(document_id)
    if document is None:  # pragma: no cover - a live chunk's document is always live
        raise LookupError(f"no live document {document_id!r} in {reader.version}")
    return document


def _no_candidates(shard: int, also: int) -> ShardCandidates:
    nothing = np.zeros(0, dtype=np.float32)
    return ShardCandidates(
        shard,
        EMPTY_VERSION,
        (),
        np.zeros(0, dtype=np.float32),
        np.zeros(1, dtype=np.int64),
        np.zeros((0, 2), dtype=np.int64),
        np.zeros(0, dtype=bool),
        np.zeros(0, dtype=np.float32),
        (),
        (),
        {},
        tuple(VectorAnswer((), nothing, nothing) for _ in range(also)),
    )
