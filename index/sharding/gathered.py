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
larger limit or terms without statistics are `NotGatheredError`, never a silently smaller answer.
Out of scope: asking the shards (`index.sharding.coordinator`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from corpus import Document
from index.embedding import Vectors
from index.errors import IndexError_
from index.search.filters import Filter
from index.search.passage_index import PassageVectors, Sentence, SentenceVectors
from index.sharding.messages import ShardCandidates, ShardPassage
from index.storage.arrays import ranges
from index.storage.fields import Mask
from index.storage.postings import CollectionStatistics
from index.text.chunking import Chunk

ContentKey = tuple[str, int]  # (document id, chunk start): a passage's place in content order


class NotGatheredError(IndexError_):
    """Asked for candidates or statistics the shards were not asked for."""


def content_key(passage: ShardPassage) -> ContentKey:
    return passage.chunk.document_id, passage.chunk.start


def merged(
    answers: Sequence[ShardCandidates], lexical: bool, limit: int
) -> list[tuple[ContentKey, float, ShardPassage]]:
    """The top `limit` of every shard's dense (or, with `lexical`, BM25) candidates: best score
    first, ties in content order."""
    found = []
    for answer in answers:
        passages = answer.passages()
        found += [
            (content_key(passages[position]), score, passages[position])
            for position, score in (answer.lexical if lexical else answer.dense)
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
        dimension: int,
    ) -> None:
        """`answers`: every shard's, for one `CandidateRequest` with this `limit`, `dense` and
        `lexical`; `dimension`: the vectors'."""
        self._version = version
        self._has_dates = has_dates
        self._statistics = statistics
        self.limit = limit
        self.gathered = {"dense": dense, "lexical": lexical}
        dense_list = merged(answers, lexical=False, limit=limit)
        lexical_list = merged(answers, lexical=True, limit=limit)
        by_key = {key: passage for key, _, passage in dense_list + lexical_list}
        keys = sorted(by_key)
        row_of = {key: row for row, key in enumerate(keys)}
        self.passages = [by_key[key] for key in keys]
        self.dense = ([row_of[key] for key, _, _ in dense_list], [score for _, score, _ in dense_list])
        self.lexical = ([row_of[key] for key, _, _ in lexical_list], [score for _, score, _ in lexical_list])
        self.documents: dict[str, Document] = {}
        for answer in answers:
            self.documents.update(answer.documents)
        self.vectors: Vectors = np.array([p.vector for p in self.passages], dtype=np.float32).reshape(
            -1, dimension
        )
        counts = np.array([len(p.sentence_questions) for p in self.passages], dtype=np.int64)
        self.sentence_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.sentence_spans = np.concatenate(
            [p.sentence_spans for p in self.passages] or [np.zeros((0, 2), dtype=np.int64)]
        )
        self.sentence_questions = np.concatenate(
            [p.sentence_questions for p in self.passages] or [np.zeros(0, dtype=bool)]
        ).astype(bool)
        self.all_sentence_vectors: Vectors = np.concatenate(
            [p.sentence_vectors for p in self.passages] or [np.zeros((0, dimension), dtype=np.float32)]
        ).astype(np.float32, copy=False)

    # --- what the whole index says --------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._version

    @property
    def has_dates(self) -> bool:
        return self._has_dates

    def statistics(self, terms: Sequence[str]) -> CollectionStatistics:
        missing = set(terms) - set(self._statistics.document_frequency)
        if missing:
            raise NotGatheredError(f"no statistics gathered for terms {sorted(missing)}")
        return self._statistics

    def allowed(self, filter: Filter) -> Mask:
        allowed: Mask = np.ones(len(self.passages), dtype=bool)
        return allowed

    # --- the candidates -------------------------------------------------------------------------

    def dense_search(
        self, vector: Vectors, limit: int, allowed: Mask | None = None
    ) -> tuple[list[int], list[float]]:
        return self._candidates("dense", self.dense, limit)

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
        return self.passages[row].chunk

    def document_id_of(self, row: int) -> str:
        return self.passages[row].chunk.document_id

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

    def chunk_vectors(self, rows: Sequence[int]) -> Vectors:
        return self.vectors[np.asarray(rows, dtype=np.int64)]

    def sentence_vectors(self, rows: Sequence[int]) -> Vectors:
        return self.all_sentence_vectors[np.asarray(rows, dtype=np.int64)]

    def passage_vectors(self, rows: Sequence[int], with_sentences: bool) -> Iterator[PassageVectors]:
        """All of `rows` as one part."""
        array = np.asarray(rows, dtype=np.int64)
        sentences = None
        if with_sentences:
            starts, ends = self.sentence_ptr[array], self.sentence_ptr[array + 1]
            sentence_rows = ranges(starts, ends)
            sentences = SentenceVectors(
                ends - starts,
                sentence_rows,
                self.all_sentence_vectors[sentence_rows],
                self.sentence_questions[sentence_rows],
            )
        yield PassageVectors(np.arange(len(array), dtype=np.int64), self.vectors[array], sentences)
