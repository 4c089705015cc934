"""The candidates of one sharded query, gathered from the shards into one `PassageIndex`.

The retrieval stages (`index.search.retrieval.PassageRetriever`) read it as they read an
`IndexReader`, so single-process and sharded search share every stage after the candidates:
fusion, near-duplicates, answer spans, answerability.

Merging: each shard sent its dense and its BM25 top-`limit` (`index.sharding.messages`). The
global top-`limit` of a signal is the top-`limit` of their union, ordered by score, ties by
content (document id, then the chunk's start): every passage of the global top-`limit` is in its
own shard's top-`limit`, since a shard ranks its passages by the same order. The gathered
passages (those of either merged list) get rows ``0..n-1`` in content order, so "ties to the
lower row", which the later stages use (fusion's last tie-break, `top`), is content order too.
An index built in one go (one segment per index, documents in id order) numbers its rows in
content order as well, so its ties break the same way; see `index.sharding.coordinator` for
where that stops holding.

Statistics, `has_dates` and the version are the whole sharded index's (summed, or-ed, joined by
the coordinator). `allowed` lets every gathered row through: the shards applied the filter.

A `GatheredCandidates` answers only the query it was gathered for: a signal it did not gather, a
larger limit, terms without statistics, a vector other than the question's (and the further
vectors asked for with it: document search's feedback) or a passage vector the coordinator did
not fetch are `NotGatheredError`, never a silently smaller answer.
Out of scope: asking the shards (`index.sharding.coordinator`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Vectors
from index.errors import IndexError_
from index.search.filters import Filter
from index.search.passage_index import PassageCosines, Sentence, SentenceCosines
from index.sharding.messages import ShardCandidates
from index.storage.arrays import ranges
from index.storage.fields import Mask
from index.storage.postings import CollectionStatistics
from index.text.chunking import Chunk

ContentKey = tuple[str, int]  # (document id, chunk start): a passage's place in content order


class NotGatheredError(IndexError_):
    """Asked for candidates or statistics the shards were not asked for."""


Found = tuple[ContentKey, float, int, int]  # (content key, score, answer's index, position in it)


def merged(
    answers: Sequence[ShardCandidates], lists: Sequence[tuple[tuple[int, float], ...]], limit: int
) -> list[Found]:
    """The top `limit` of every shard's candidates of one signal (`lists[i]`: answer i's list of
    that signal): best score first, ties in content order."""
    found = [
        ((answer.chunks[position].document_id, answer.chunks[position].start), score, index, position)
        for index, (answer, listed) in enumerate(zip(answers, lists, strict=True))
        for position, score in listed
    ]
    found.sort(key=lambda item: (-item[1], item[0]))
    return found[:limit]


class GatheredCandidates:
    def __init__(
        self,
        version: str,
        has_dates: bool,
        statistics: CollectionStatistics,
        limit: int,
        answers: Sequence[ShardCandidates],
        dense: bool,
        lexical: bool,
        vector: Vectors,
        also: Sequence[Vectors] = (),
        known_vectors: dict[ContentKey, Vectors] | None = None,
    ) -> None:
        """`answers`: every shard's, for one `CandidateRequest` with this `limit`, `dense`,
        `lexical`, question `vector` and further vectors `also`, the only vectors whose dense
        candidates and cosines this answers. `known_vectors`: stored vectors of some passages,
        by content key, the only ones `chunk_vectors` gives."""
        self._version = version
        self._has_dates = has_dates
        self._statistics = statistics
        self.limit = limit
        self.vectors = [np.ascontiguousarray(v.reshape(-1), dtype=np.float32) for v in (vector, *also)]
        self.vector = self.vectors[0]
        self.gathered = {"dense": dense, "lexical": lexical}
        dense_lists = [merged(answers, [answer.dense for answer in answers], limit)] + [
            merged(answers, [answer.also[extra].dense for answer in answers], limit)
            for extra in range(len(also))
        ]
        lexical_list = merged(answers, [answer.lexical for answer in answers], limit)
        by_key = {
            key: (index, position)
            for key, _, index, position in [found for listed in dense_lists for found in listed]
            + lexical_list
        }
        keys = sorted(by_key)
        row_of = {key: row for row, key in enumerate(keys)}
        self.dense_by_vector = [
            ([row_of[found[0]] for found in listed], [found[1] for found in listed]) for listed in dense_lists
        ]
        self.dense = self.dense_by_vector[0]
        self.lexical = ([row_of[found[0]] for found in lexical_list], [found[1] for found in lexical_list])
        self.known_vectors = dict(known_vectors or {})
        self.documents: dict[str, Document] = {}
        for answer in answers:
            self.documents.update(answer.documents)
        picked = [by_key[key] for key in keys]
        self.chunks = [answers[index].chunks[position] for index, position in picked]
        # Every answer's columns end to end; a gathered row is one passage of one answer.
        offsets = np.cumsum([0] + [len(answer.chunks) for answer in answers])
        sentence_offsets = np.cumsum([0] + [int(answer.sentence_ptr[-1]) for answer in answers])
        at = np.array([offsets[index] + position for index, position in picked], dtype=np.int64)
        bases = np.array([sentence_offsets[index] for index, _ in picked], dtype=np.int64)
        starts = np.concatenate([answer.sentence_ptr[:-1] for answer in answers] or [np.zeros(0, np.int64)])
        ends = np.concatenate([answer.sentence_ptr[1:] for answer in answers] or [np.zeros(0, np.int64)])
        sentence_rows = ranges(bases + starts[at], bases + ends[at]) if len(at) else np.zeros(0, np.int64)
        self.cosines_by_vector = [_joined([answer.cosines for answer in answers], np.float32)[at]] + [
            _joined([answer.also[extra].cosines for answer in answers], np.float32)[at]
            for extra in range(len(also))
        ]
        self.cosines = self.cosines_by_vector[0]
        counts = (ends[at] - starts[at]) if len(at) else np.zeros(0, np.int64)
        self.sentence_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.sentence_spans = np.concatenate(
            [answer.sentence_spans for answer in answers] or [np.zeros((0, 2), dtype=np.int64)]
        ).reshape(-1, 2)[sentence_rows]
        self.sentence_questions = _joined([answer.sentence_questions for answer in answers], np.bool_)[
            sentence_rows
        ]
        self.sentence_cosines_by_vector = [
            _joined([answer.sentence_cosines for answer in answers], np.float32)[sentence_rows]
        ] + [
            _joined([answer.also[extra].sentence_cosines for answer in answers], np.float32)[sentence_rows]
            for extra in range(len(also))
        ]
        self.all_sentence_cosines = self.sentence_cosines_by_vector[0]

    # --- what the whole index says --------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._version

    @property
    def has_dates(self) -> bool:
        return self._has_dates

    @property
    def searches_in_parallel(self) -> bool:
        return False  # the shards searched; what is left here is picking from their lists

    def statistics(self, terms: Sequence[str]) -> CollectionStatistics:
        missing = set(terms) - set(self._statistics.document_frequency)
        if missing:
            raise NotGatheredError(f"no statistics gathered for terms {sorted(missing)}")
        return self._statistics

    def allowed(self, filter: Filter) -> Mask:
        allowed: Mask = np.ones(len(self.chunks), dtype=np.bool_)
        return allowed

    # --- the candidates -------------------------------------------------------------------------

    def dense_search(
        self, vector: Vectors, limit: int, allowed: Mask | None = None
    ) -> tuple[list[int], list[float]]:
        return self._candidates("dense", self.dense_by_vector[self._vector_index(vector)], limit)

    def lexical_search(
        self,
        terms: Sequence[str],
        limit: int,
        k1: float,
        b: float,
        statistics: CollectionStatistics | None = None,
        allowed: Mask | None = None,
    ) -> tuple[list[int], list[float]]:
        if not terms:
            return [], []
        return self._candidates("lexical", self.lexical, limit)

    def _candidates(
        self, signal: str, candidates: tuple[list[int], list[float]], limit: int
    ) -> tuple[list[int], list[float]]:
        if not self.gathered[signal] or limit > self.limit:
            raise NotGatheredError(
                f"{signal} candidates gathered: {self.gathered[signal]}, up to {self.limit}; asked {limit}"
            )
        return candidates[0][:limit], candidates[1][:limit]

    # --- passages -------------------------------------------------------------------------------

    def chunk(self, row: int) -> Chunk:
        return self.chunks[row]

    def document_id_of(self, row: int) -> str:
        return self.chunks[row].document_id

    def document(self, document_id: str) -> Document | None:
        return self.documents.get(document_id)

    def sentences(self, row: int) -> list[Sentence]:
        first, last = int(self.sentence_ptr[row]), int(self.sentence_ptr[row + 1])
        return [
            Sentence(first + offset, start, end, bool(question))
            for offset, ((start, end), question) in enumerate(
                zip(
                    self.sentence_spans[first:last].tolist(),
                    self.sentence_questions[first:last].tolist(),
                    strict=True,
                )
            )
        ]

    # --- cosines, with the gathered vectors only ---------------------------------------------------

    def passage_cosines(self, vector: Vectors, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        by_vector = self.cosines_by_vector[self._vector_index(vector)]
        cosines: npt.NDArray[np.float32] = by_vector[np.asarray(rows, dtype=np.int64)]
        return cosines

    def sentence_cosines(self, vector: Vectors, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        by_vector = self.sentence_cosines_by_vector[self._vector_index(vector)]
        cosines: npt.NDArray[np.float32] = by_vector[np.asarray(rows, dtype=np.int64)]
        return cosines

    def scored_passages(
        self, vector: Vectors, rows: Sequence[int], with_sentences: bool
    ) -> Iterator[PassageCosines]:
        """All of `rows` as one part."""
        which = self._vector_index(vector)
        array = np.asarray(rows, dtype=np.int64)
        sentences = None
        if with_sentences:
            starts, ends = self.sentence_ptr[array], self.sentence_ptr[array + 1]
            sentence_rows = ranges(starts, ends)
            sentences = SentenceCosines(
                ends - starts,
                sentence_rows,
                self.sentence_cosines_by_vector[which][sentence_rows],
                self.sentence_questions[sentence_rows],
            )
        yield PassageCosines(
            np.arange(len(array), dtype=np.int64), self.cosines_by_vector[which][array], sentences
        )

    def chunk_vectors(self, rows: Sequence[int]) -> Vectors:
        """The stored vectors of `rows`, when the coordinator fetched them (`known_vectors`): the
        shards send cosines, not passage vectors."""
        keys = [(self.chunks[row].document_id, self.chunks[row].start) for row in rows]
        missing = [key for key in keys if key not in self.known_vectors]
        if missing:
            raise NotGatheredError(f"no stored vector fetched for the passages {missing}")
        return np.stack([self.known_vectors[key].reshape(-1) for key in keys]).astype(np.float32, copy=False)

    def _vector_index(self, vector: Vectors) -> int:
        """Which gathered vector `vector` is: its candidates and cosines are the only ones here."""
        flat = vector.reshape(-1)
        for index, gathered in enumerate(self.vectors):
            if np.array_equal(flat, gathered):
                return index
        raise NotGatheredError("candidates and cosines were gathered for other vectors")


def _joined(columns: list[npt.NDArray[Any]], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """`columns` end to end (an empty array of `dtype` for none)."""
    return np.concatenate(columns) if columns else np.zeros(0, dtype=dtype)
