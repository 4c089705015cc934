"""Answering a query over a loaded index: ranked, explained, de-duplicated, cited hits.

For each query: dense candidates from FAISS, lexical candidates from BM25, fused (hybrid) or
taken alone (dense, bm25); near-identical chunks dropped; for every hit the sentence that best
answers the query (cosine to the query plus the share of query terms it contains) and an
explanation of where its score came from. `answerable` says whether the best hit clears a
confidence threshold calibrated on the eval set (`make eval`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.analysis import matched_terms, term_set, terms
from index.answer_types import ExpectedAnswer, expected_answer, offers_answer
from index.building import IndexData
from index.chunking import Chunk
from index.embedding import Embedder, Vectors
from index.fusion import convex_combination_of_arrays, reciprocal_rank_fusion
from index.vectors import search_vectors

Mode = Literal["hybrid", "dense", "bm25"]
ANSWERABILITY_DEPTH = 3  # hits whose answer sentences decide `answerable`
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=50_000)
def _word_set(text: str) -> frozenset[str]:
    """Lower-cased words of a chunk, cached: duplicate checks compare the same chunks often."""
    return frozenset(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class RetrievalOptions:
    candidates: int = 100
    fusion: Literal["rrf", "convex"] = "rrf"
    rrf_k: float = 60.0
    dense_weight: float = 0.5
    answerable_threshold: float = 0.45
    sentence_weight: float = 0.0
    answer_term_weight: float = 0.3
    answer_type_weight: float = 0.15
    duplicate_overlap: float = 0.5
    duplicate_jaccard: float = 0.85


@dataclass(frozen=True)
class AnswerSpan:
    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Explanation:
    dense_rank: int | None
    dense_score: float
    bm25_rank: int | None
    bm25_score: float | None
    matched_terms: list[str]
    fused_score: float | None
    fusion: str | None


@dataclass(frozen=True)
class Hit:
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


@dataclass(frozen=True)
class _Candidates:
    vector: Vectors
    ordered: list[tuple[int, float]]
    dense_rank: dict[int, int]
    lexical_rank: dict[int, int]
    lexical_score: dict[int, float]


class Retriever:
    def __init__(self, data: IndexData, version: str, embedder: Embedder, options: RetrievalOptions) -> None:
        self.data = data
        self.version = version
        self.embedder = embedder
        self.options = options
        self._answerless = data.sentence_is_question

    def rank(
        self, query: str, mode: Mode = "hybrid", limit: int | None = None, query_vector: Vectors | None = None
    ) -> list[tuple[int, float]]:
        """Candidate chunk rows and their scores, best first: the ranking `search` starts from,
        before near-duplicates are dropped and answer spans found (what ranking metrics need).

        `limit` is how many candidates each underlying ranking contributes (default: the
        `candidates` option)."""
        return self._candidates(query, mode, limit or self.options.candidates, query_vector).ordered

    def fuse(
        self, query_vector: Vectors, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]
    ) -> list[tuple[int, float]]:
        """The hybrid ranking of dense and BM25 candidate lists already at hand (`rank` in those
        modes): the same as `rank(query, "hybrid")` at the same limit, without searching again."""
        return self._order(
            "hybrid",
            query_vector.reshape(-1),
            [row for row, _ in dense],
            [score for _, score in dense],
            [row for row, _ in lexical],
            dict(lexical),
        )

    def _candidates(self, query: str, mode: Mode, limit: int, query_vector: Vectors | None) -> _Candidates:
        data = self.data
        if query_vector is None:
            query_vector = self.embedder.embed_batch([query])
        vector = query_vector.reshape(-1)
        dense_rows, dense_scores = ([], [])
        if mode != "bm25":
            rows, scores = search_vectors(data.vector_index, vector[None, :], limit)
            keep = rows[0] >= 0
            dense_rows, dense_scores = rows[0][keep].tolist(), scores[0][keep].tolist()
        lexical_rows, lexical_scores = ([], [])
        if mode != "dense":
            rows_1d, scores_1d = data.lexical.search(query, limit)
            lexical_rows, lexical_scores = rows_1d.tolist(), scores_1d.tolist()
        lexical_score = dict(zip(lexical_rows, lexical_scores, strict=True))
        return _Candidates(
            vector=vector,
            ordered=self._order(mode, vector, dense_rows, dense_scores, lexical_rows, lexical_score),
            dense_rank={row: rank for rank, row in enumerate(dense_rows, start=1)},
            lexical_rank={row: rank for rank, row in enumerate(lexical_rows, start=1)},
            lexical_score=lexical_score,
        )

    def search(
        self, query: str, k: int = 5, mode: Mode = "hybrid", query_vector: Vectors | None = None
    ) -> SearchOutcome:
        data, options = self.data, self.options
        candidates = self._candidates(query, mode, max(options.candidates, k * 4), query_vector)
        vector, ordered = candidates.vector, candidates.ordered
        dense_rank, lexical_rank = candidates.dense_rank, candidates.lexical_rank
        lexical_score = candidates.lexical_score

        hits: list[Hit] = []
        term_weights = self._term_weights(query)
        expected = expected_answer(query)
        # At least three hits are built, whatever k, so `answerable` never depends on k.
        for row, score in ordered:
            if len(hits) == max(k, ANSWERABILITY_DEPTH):
                break
            if self._is_duplicate(row, hits):
                continue
            chunk = data.chunks[row]
            cosine = float(data.chunk_vectors[row] @ vector)
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=float(score),
                    chunk=chunk,
                    document=data.documents[chunk.document_id],
                    answer=self._answer_span(row, vector, term_weights, expected),
                    explain=Explanation(
                        dense_rank=dense_rank.get(row),
                        dense_score=cosine,
                        bm25_rank=lexical_rank.get(row),
                        bm25_score=lexical_score.get(row),
                        matched_terms=matched_terms(query, chunk.text) if mode != "dense" else [],
                        fused_score=float(score) if mode == "hybrid" else None,
                        fusion=options.fusion if mode == "hybrid" else None,
                    ),
                )
            )
        confidence = self._confidence([row for row, _ in ordered[:ANSWERABILITY_DEPTH]], vector)
        offered = any(offers_answer(h.answer.text, expected) for h in hits[:ANSWERABILITY_DEPTH])
        return SearchOutcome(
            query=query,
            mode=mode,
            index_version=self.version,
            answerable=confidence >= options.answerable_threshold and offered,
            confidence=confidence,
            hits=hits[:k],
        )

    def _order(
        self,
        mode: Mode,
        vector: Vectors,
        dense_rows: list[int],
        dense_scores: list[float],
        lexical_rows: list[int],
        lexical_score: dict[int, float],
    ) -> list[tuple[int, float]]:
        if mode == "dense":
            return list(zip(dense_rows, dense_scores, strict=True))
        if mode == "bm25":
            return [(row, lexical_score[row]) for row in lexical_rows]
        if self.options.fusion == "rrf":
            return reciprocal_rank_fusion([dense_rows, lexical_rows], k=self.options.rrf_k)
        rows = list(dict.fromkeys(dense_rows + lexical_rows))
        dense = self._dense_signal(rows, vector, self.options.sentence_weight)
        lexical = np.array([lexical_score.get(row, 0.0) for row in rows]) if lexical_score else None
        return convex_combination_of_arrays(rows, dense, lexical, self.options.dense_weight)

    def _dense_signal(self, rows: list[int], vector: Vectors, weight: float) -> npt.NDArray[np.float64]:
        """Hybrid mode's dense score of each row: ``(1 - s) * cos(q, passage) + s * max over the
        passage's sentences of cos(q, sentence)``, s = `sentence_weight`. A question usually asks
        about one sentence, which a passage vector dilutes; rows without sentence vectors (a
        ranking-only index) use the passage cosine alone."""
        data = self.data
        if not rows:
            return np.zeros(0, dtype=np.float64)
        cosines = data.chunk_vectors[rows] @ vector
        if weight <= 0 or len(data.sentence_vectors) == 0:
            return cosines.astype(np.float64)
        starts, ends = data.sentence_ptr[rows], data.sentence_ptr[np.asarray(rows) + 1]
        counts = ends - starts
        offsets = np.cumsum(counts) - counts  # where each row's sentences begin in `sentence_rows`
        # All rows' sentence ranges at once (a Python loop over ~200 rows cost ~1 ms per query).
        sentence_rows = np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()))
        best = cosines.copy()  # rows without sentences keep their passage cosine
        if len(sentence_rows):
            sentence_cosines = data.sentence_vectors[sentence_rows] @ vector
            # A question in the text (an interviewer's, a rhetorical one) is never the answer, yet it
            # resembles every user question; it must not lift its passage.
            sentence_cosines = np.where(self._answerless[sentence_rows], -1.0, sentence_cosines)
            has_sentences = counts > 0
            best[has_sentences] = np.maximum.reduceat(sentence_cosines, offsets[has_sentences])
            best = np.where(best <= -1.0, cosines, best)  # only questions: the passage cosine
        # In float64, as Python floats would be: identical scores, identical ranking.
        return (1.0 - weight) * cosines.astype(np.float64) + weight * best.astype(np.float64)

    def _is_duplicate(self, row: int, hits: list[Hit]) -> bool:
        chunk = self.data.chunks[row]
        words = _word_set(chunk.text)
        for hit in hits:
            other = hit.chunk
            if other.document_id == chunk.document_id:
                overlap = min(chunk.end, other.end) - max(chunk.start, other.start)
                shorter = min(chunk.end - chunk.start, other.end - other.start)
                if overlap > self.options.duplicate_overlap * shorter:
                    return True
            other_words = _word_set(other.text)
            union = words | other_words
            if union and len(words & other_words) / len(union) >= self.options.duplicate_jaccard:
                return True
        return False

    def answer_spans(self, query: str, query_vector: Vectors, rows: list[int]) -> list[AnswerSpan]:
        """The answer sentence of each chunk in `rows`, as `search` picks it."""
        vector = query_vector.reshape(-1)
        term_weights, expected = self._term_weights(query), expected_answer(query)
        return [self._answer_span(row, vector, term_weights, expected) for row in rows]

    def _term_weights(self, query: str) -> dict[str, float]:
        return self.data.lexical.idf(set(terms(query)))

    def _answer_span(
        self, row: int, vector: Vectors, term_weights: dict[str, float], expected: ExpectedAnswer | None
    ) -> AnswerSpan:
        """The chunk's sentence maximising ``cos(q, s) + w * idf(q terms in s) / idf(q terms)
        + b * [s offers the expected answer type]``; sentences that are questions only as a last resort."""
        data = self.data
        total_weight = sum(term_weights.values())
        document = data.documents[data.chunks[row].document_id]
        best: AnswerSpan | None = None
        sentences = data.chunk_sentences(row)
        answering = [s for s in sentences if not self._answerless[s[0]]] or sentences
        for sentence_row, start, end in answering:
            text = document.text[start:end]
            cosine = float(data.sentence_vectors[sentence_row] @ vector)
            sentence_terms = term_set(text)
            covered = (
                sum(w for t, w in term_weights.items() if t in sentence_terms) / total_weight
                if total_weight
                else 0.0
            )
            score = cosine + self.options.answer_term_weight * covered
            if expected is not None and offers_answer(text, expected):
                score += self.options.answer_type_weight
            if best is None or score > best.score:
                best = AnswerSpan(text, start, end, score)
        if best is None:  # a chunk with no sentence boundary found: the chunk itself
            chunk = data.chunks[row]
            return AnswerSpan(chunk.text, chunk.start, chunk.end, float(data.chunk_vectors[row] @ vector))
        return best

    def _confidence(self, top_rows: list[int], vector: Vectors) -> float:
        """Best passage cosine among the top three candidates, whatever k: how well the corpus
        covers the query (threshold calibrated in README "Evaluation")."""
        return max(self._dense_signal(top_rows, vector, 0.0).tolist(), default=0.0)
