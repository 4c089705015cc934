"""Answering a query over a loaded index: ranked, explained, de-duplicated, cited hits.

For each query: dense candidates from FAISS, lexical candidates from BM25, fused (hybrid) or
taken alone (dense, bm25); near-identical chunks dropped; for every hit the sentence that best
answers the query (cosine to the query plus the share of query terms it contains) and an
explanation of where its score came from. `answerable` says whether the best hit clears a
confidence threshold calibrated on the eval set (`make eval`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from corpus import Document
from index.building import IndexData
from index.chunking import Chunk
from index.embedding import Embedder, Vectors
from index.fusion import convex_combination, reciprocal_rank_fusion
from index.lexical import matched_terms, stem_tokens
from index.vectors import search_vectors

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class RetrievalOptions:
    candidates: int = 100
    fusion: Literal["rrf", "convex"] = "rrf"
    rrf_k: float = 60.0
    dense_weight: float = 0.5
    answerable_threshold: float = 0.45
    answer_term_weight: float = 0.3
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


class Retriever:
    def __init__(self, data: IndexData, version: str, embedder: Embedder, options: RetrievalOptions) -> None:
        self.data = data
        self.version = version
        self.embedder = embedder
        self.options = options

    def search(
        self, query: str, k: int = 5, mode: Mode = "hybrid", query_vector: Vectors | None = None
    ) -> SearchOutcome:
        data, options = self.data, self.options
        if query_vector is None:
            query_vector = self.embedder.embed_batch([query])
        vector = query_vector.reshape(-1)
        limit = max(options.candidates, k * 4)

        dense_rows, dense_scores = ([], [])
        if mode != "bm25":
            rows, scores = search_vectors(data.vector_index, vector[None, :], limit)
            keep = rows[0] >= 0
            dense_rows, dense_scores = rows[0][keep].tolist(), scores[0][keep].tolist()
        lexical_rows, lexical_scores = ([], [])
        if mode != "dense":
            rows_1d, scores_1d = data.lexical.search(query, limit)
            lexical_rows, lexical_scores = rows_1d.tolist(), scores_1d.tolist()

        dense_rank = {row: rank for rank, row in enumerate(dense_rows, start=1)}
        lexical_rank = {row: rank for rank, row in enumerate(lexical_rows, start=1)}
        lexical_score = dict(zip(lexical_rows, lexical_scores, strict=True))
        ordered = self._order(mode, vector, dense_rows, dense_scores, lexical_rows, lexical_score)

        hits: list[Hit] = []
        term_weights = data.lexical.idf(set(stem_tokens([query])[0]))
        for row, score in ordered:
            if len(hits) == k:
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
                    answer=self._answer_span(row, vector, term_weights),
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
        confidence = self._confidence([row for row, _ in ordered[:3]], vector)
        return SearchOutcome(
            query=query,
            mode=mode,
            index_version=self.version,
            answerable=confidence >= options.answerable_threshold,
            confidence=confidence,
            hits=hits,
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
        dense = dict(zip(dense_rows, dense_scores, strict=True))
        for row in lexical_rows:
            dense.setdefault(row, float(self.data.chunk_vectors[row] @ vector))
        return convex_combination(dense, lexical_score, self.options.dense_weight)

    def _is_duplicate(self, row: int, hits: list[Hit]) -> bool:
        chunk = self.data.chunks[row]
        words = set(_WORD.findall(chunk.text.lower()))
        for hit in hits:
            other = hit.chunk
            if other.document_id == chunk.document_id:
                overlap = min(chunk.end, other.end) - max(chunk.start, other.start)
                shorter = min(chunk.end - chunk.start, other.end - other.start)
                if overlap > self.options.duplicate_overlap * shorter:
                    return True
            other_words = set(_WORD.findall(other.text.lower()))
            union = words | other_words
            if union and len(words & other_words) / len(union) >= self.options.duplicate_jaccard:
                return True
        return False

    def _answer_span(self, row: int, vector: Vectors, term_weights: dict[str, float]) -> AnswerSpan:
        """The chunk's sentence maximising ``cos(q, s) + w * idf(q terms in s) / idf(q terms)``."""
        data = self.data
        total_weight = sum(term_weights.values())
        document = data.documents[data.chunks[row].document_id]
        best: AnswerSpan | None = None
        for sentence_row, start, end in data.chunk_sentences(row):
            text = document.text[start:end]
            cosine = float(data.sentence_vectors[sentence_row] @ vector)
            stems = set(stem_tokens([text])[0])
            covered = (
                sum(w for t, w in term_weights.items() if t in stems) / total_weight if total_weight else 0.0
            )
            score = cosine + self.options.answer_term_weight * covered
            if best is None or score > best.score:
                best = AnswerSpan(text, start, end, score)
        if best is None:  # a chunk with no sentence boundary found: the chunk itself
            chunk = data.chunks[row]
            return AnswerSpan(chunk.text, chunk.start, chunk.end, float(data.chunk_vectors[row] @ vector))
        return best

    def _confidence(self, top_rows: list[int], vector: Vectors) -> float:
        """Best passage cosine among the top three candidates, whatever k: how well the corpus
        covers the query."""
        return max((float(self.data.chunk_vectors[row] @ vector) for row in top_rows), default=0.0)
