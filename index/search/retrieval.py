"""Answering a query over a loaded index: ranked, explained, de-duplicated, cited hits.

A search runs five stages, each in its own module and testable alone:

1. candidates (`index.search.candidates`): dense candidates from the vector index, lexical from BM25;
2. fusion (`index.search.fusion`): hybrid mode fuses them with the method the options chose; dense and
   bm25 modes take one list as it is;
3. near-duplicate collapse (`index.search.duplicates`);
4. answer spans (`index.search.answers`): each kept passage's best answer sentence; a passage whose
   answer overlaps one already listed (in the same document) is dropped too;
5. answerability (`index.search.answerability`): `answerable` and its `confidence`.

`PassageRetriever` wires them over any `PassageIndex` (`index.search.passage_index`): `Retriever`
over one index generation (`IndexReader`), the sharded coordinator (`index.sharding`) over the
candidates it gathered from the shards, the stages sharing one `Query`
(`index.search.query`: the question's terms, statistics, vector and the cosines already computed);
`rank` stops after stage 2 (what ranking metrics and document ranking need). Out of scope: document-level ranking
(`index.search.document_ranking`, which re-uses these stages) and context windows (`index.search.context`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from corpus import Document
from index.embedding import Embedder, Vectors
from index.search.answerability import DEPTH, Answerability, AnswerabilityModel
from index.search.answers import AnswerFinder, AnswerSpan
from index.search.candidates import (
    NO_CANDIDATES,
    Candidates,
    dense_candidates,
    dense_scores,
    lexical_candidates,
)
from index.search.duplicates import distinct
from index.search.filters import Filter
from index.search.fusion import Fusion, fusion_for
from index.search.modes import FusionMethod, Mode
from index.search.options import DEFAULT_K, DEFAULT_MODE, RetrievalOptions
from index.search.parallel import run_all
from index.search.passage_index import PassageIndex
from index.search.query import Query
from index.search.question_dates import QuestionDates, dates_in_question
from index.search.reader import IndexReader
from index.search.stages import ANSWERS, BM25, DENSE, FUSION, stage
from index.text.chunking import Chunk


@dataclass(frozen=True)
class Explanation:
    dense_rank: int | None
    dense_score: float
    bm25_rank: int | None
    bm25_score: float | None
    matched_terms: list[str]
    fused_score: float | None
    fusion: FusionMethod | None


@dataclass(frozen=True)
class Hit:
    row: int  # the passage's row in the reader that answered
    rank: int
    score: float
    chunk: Chunk
    document: Document
    answer: AnswerSpan
    explain: Explanation


@dataclass(frozen=True)
class SearchOutcome:
    query: str
    mode: Mode
    index_version: str
    answerable: bool
    confidence: float
    hits: list[Hit] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)  # what `confidence` was computed from
    filter: Filter | None = None  # the request's filter
    dates: QuestionDates | None = None  # the question's own dates, applied too


@dataclass(frozen=True)
class Ranking:
    """Stages 1 and 2 of one search: both candidate lists and the ranking made of them."""

    dense: Candidates
    lexical: Candidates
    ordered: list[tuple[int, float]]


def same_answer(document_id: str, answer: AnswerSpan, hit: Hit) -> bool:
    """Whether `answer`, in document `document_id`, overlaps `hit`'s answer: two overlapping
    windows of a document that cite one sentence give one answer, listed once."""
    return (
        hit.chunk.document_id == document_id
        and hit.answer.field == answer.field
        and answer.start < hit.answer.end
        and hit.answer.start < answer.end
    )


class PassageRetriever:
    """The stages over any `PassageIndex`: an index's reader, or a sharded query's gathered candidates."""

    def __init__(self, reader: PassageIndex, embedder: Embedder, options: RetrievalOptions) -> None:
        self.reader = reader
        self.version = reader.version
        self.embedder = embedder
        self.options = options
        self.fusion: Fusion = fusion_for(options)
        self.answers = AnswerFinder(reader, options.answer_term_weight, options.answer_type_weight)
        self.answerability = Answerability(options.answerable_threshold, AnswerabilityModel.load())

    def encode(self, query: str) -> Vectors:
        """The query's unit vector (1-D)."""
        return self.embedder.embed_batch([query]).reshape(-1)

    def query(
        self,
        text: str,
        vector: Vectors | None = None,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> Query:
        """The search's `Query` over this reader: `text`, with its vector (encoded when not given),
        answered from the documents `filter` matches (all, without one) and, with `as_of` (the
        request's date), published in the time range the question states, if it states one."""
        dates = None if as_of is None else dates_in_question(self.reader.has_dates, text, as_of)
        return Query(self.reader, text, self.encode(text) if vector is None else vector, filter, dates)

    def search(
        self,
        query: str,
        k: int = DEFAULT_K,
        mode: Mode = DEFAULT_MODE,
        query_vector: Vectors | None = None,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> SearchOutcome:
        """The `k` best passages for `query`, from the documents `filter` matches when given: the
        `k` best of those, as the unfiltered search would rank them (`index.search.filters`).
        With `as_of`, also within the time range the question states (`index.search.question_dates`)."""
        question = self.query(query, query_vector, filter, as_of)
        ranking = self.ranking(question, mode, self.options.candidates_for(k))
        with stage(ANSWERS):
            hits = self._hits(question, mode, ranking, k)
            verdict = self.answerability.assess(
                question,
                [row for row, _ in ranking.ordered],
                [hit.answer for hit in hits],
                [hit.chunk.text for hit in hits],
            )
        return SearchOutcome(
            query,
            mode,
            self.version,
            verdict.answerable,
            verdict.confidence,
            hits[:k],
            verdict.signals,
            question.requested_filter,
            question.dates,
        )

    def _hits(self, question: Query, mode: Mode, ranking: Ranking, k: int) -> list[Hit]:
        """Stages 3 and 4: the ranking's distinct passages, each with its answer sentence."""
        kept = distinct(
            ranking.ordered,
            self.reader.chunk,
            self.options.duplicate_overlap,
            self.options.duplicate_jaccard,
        )
        hits: list[Hit] = []
        for row, score in kept:
            # At least DEPTH hits are built, whatever k, so `answerable` never depends on k.
            if len(hits) == max(k, DEPTH):
                break
            answer = self.answers.span(row, question)
            document_id = self.reader.document_id_of(row)
            if not any(same_answer(document_id, answer, hit) for hit in hits):
                hits.append(self._hit(len(hits) + 1, row, score, answer, question, mode, ranking))
        return hits

    def rank(
        self,
        query: str,
        mode: Mode = DEFAULT_MODE,
        limit: int | None = None,
        query_vector: Vectors | None = None,
        filter: Filter | None = None,
    ) -> list[tuple[int, float]]:
        """Passage rows and scores, best first, before near-duplicates are dropped (what ranking
        metrics need); `limit` candidates per signal (default: the `candidates` option)."""
        question = self.query(query, query_vector, filter)
        return self.ranking(question, mode, limit or self.options.candidates).ordered

    def ranking(self, query: Query, mode: Mode, limit: int) -> Ranking:
        def dense() -> Candidates:
            with stage(DENSE):
                return dense_candidates(self.reader, query.vector, limit, query.allowed)

        def lexical() -> Candidates:
            with stage(BM25):
                return lexical_candidates(query, limit, self.options.bm25_k1, self.options.bm25_b)

        searches = [
            search for search, skipped in ((dense, Mode.BM25), (lexical, Mode.DENSE)) if mode != skipped
        ]
        found = run_all(searches, side_by_side=self.reader.searches_in_parallel)
        dense_found = found[0] if mode != Mode.BM25 else NO_CANDIDATES
        lexical_found = found[-1] if mode != Mode.DENSE else NO_CANDIDATES
        with stage(FUSION):
            ordered = self.ordered(mode, query, dense_found, lexical_found)
        return Ranking(dense_found, lexical_found, ordered)

    def ordered(
        self, mode: Mode, query: Query, dense: Candidates, lexical: Candidates
    ) -> list[tuple[int, float]]:
        """Stage 2: the ranking of `mode` made of candidate lists already at hand."""
        if mode == Mode.DENSE:
            return dense.ranked()
        if mode == Mode.BM25:
            return lexical.ranked()
        weight = self.options.sentence_weight
        return self.fusion.fuse(dense, lexical, lambda rows: dense_scores(query, rows, weight))

    def answer_spans(self, query: Query, rows: list[int]) -> list[AnswerSpan]:
        """The answer sentence of each passage in `rows`, as `search` picks it."""
        return [self.answers.span(row, query) for row in rows]

    def document(self, document_id: str) -> Document:
        document = self.reader.document(document_id)
        if document is None:  # pragma: no cover - a live chunk's document is always live
            raise LookupError(f"no live document {document_id!r} in {self.version}")
        return document

    def _hit(
        self,
        rank: int,
        row: int,
        score: float,
        answer: AnswerSpan,
        query: Query,
        mode: Mode,
        ranking: Ranking,
    ) -> Hit:
        chunk = self.reader.chunk(row)
        hybrid = mode == Mode.HYBRID
        return Hit(
            row=row,
            rank=rank,
            score=float(score),
            chunk=chunk,
            document=self.document(chunk.document_id),
            answer=answer,
            explain=Explanation(
                dense_rank=ranking.dense.rank.get(row),
                dense_score=float(query.passage_cosines([row])[0]),
                bm25_rank=ranking.lexical.rank.get(row),
                bm25_score=ranking.lexical.score.get(row),
                matched_terms=query.matched_terms(chunk.text) if mode != Mode.DENSE else [],
                fused_score=float(score) if hybrid else None,
                fusion=self.fusion.method if hybrid else None,
            ),
        )


class Retriever(PassageRetriever):
    """The stages over one commit of one index (`IndexReader`)."""

    reader: IndexReader

    def __init__(self, reader: IndexReader, embedder: Embedder, options: RetrievalOptions) -> None:
        super().__init__(reader, embedder, options)
