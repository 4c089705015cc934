"""The first stage of a search: candidate passages from each signal, and the dense signal.

`dense_candidates` asks the vector index for the passages nearest the query vector (cosine);
`lexical_candidates` asks BM25 for the passages with the best positive score. Each returns a
`Candidates` list, best first, that later stages (fusion, explanations, document ranking) read.
`dense_scores` is hybrid mode's dense signal for any passage, candidate or not:

``dense(p) = (1 - s) * cos(q, p) + s * max over p's sentences t of cos(q, t)``

with ``s`` the sentence weight. A question usually asks about one sentence, which a passage
vector dilutes. Sentences that are themselves questions (an interviewer's, a rhetorical one) are
left out of the max: they resemble every user question but never answer one. A passage without
sentence vectors (a ranking-only index) or with only questions uses its passage cosine.
Out of scope: fusing the signals (`index.fusion`) and everything after.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.building import IndexData
from index.embedding import Vectors
from index.vectors import search_vectors


@dataclass(frozen=True)
class Candidates:
    """Passage rows and their scores under one signal, best first."""

    rows: list[int]
    scores: list[float]

    @functools.cached_property
    def rank(self) -> dict[int, int]:
        """Row -> 1-based rank."""
        return {row: rank for rank, row in enumerate(self.rows, start=1)}

    @functools.cached_property
    def score(self) -> dict[int, float]:
        """Row -> score."""
        return dict(zip(self.rows, self.scores, strict=True))

    def ranked(self) -> list[tuple[int, float]]:
        return list(zip(self.rows, self.scores, strict=True))


NO_CANDIDATES = Candidates([], [])


def dense_candidates(data: IndexData, vector: Vectors, limit: int) -> Candidates:
    rows, scores = search_vectors(data.vector_index, vector.reshape(1, -1), limit)
    found = rows[0] >= 0
    return Candidates(rows[0][found].tolist(), scores[0][found].tolist())


def lexical_candidates(data: IndexData, query: str, limit: int) -> Candidates:
    rows, scores = data.lexical.search(query, limit)
    return Candidates(rows.tolist(), scores.tolist())


def dense_scores(
    data: IndexData, rows: list[int], vector: Vectors, sentence_weight: float
) -> npt.NDArray[np.float64]:
    """The dense signal of each of `rows` (formula in the module docstring), in float64 so that
    equal inputs give equal scores and rankings whatever the batch."""
    if not rows:
        return np.zeros(0, dtype=np.float64)
    vector = vector.reshape(-1)
    cosines = (data.chunk_vectors[rows] @ vector).astype(np.float64)
    if sentence_weight <= 0 or len(data.sentence_vectors) == 0:
        return cosines
    starts, ends = data.sentence_ptr[rows], data.sentence_ptr[np.asarray(rows) + 1]
    counts = ends - starts
    offsets = np.cumsum(counts) - counts  # where each row's sentences begin in `sentence_rows`
    # All rows' sentence ranges at once (a Python loop over ~200 rows cost ~1 ms per query).
    sentence_rows = np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()))
    best = cosines.copy()
    if len(sentence_rows):
        sentence_cosines = (data.sentence_vectors[sentence_rows] @ vector).astype(np.float64)
        sentence_cosines = np.where(data.sentence_is_question[sentence_rows], -np.inf, sentence_cosines)
        has_sentences = counts > 0
        best[has_sentences] = np.maximum.reduceat(sentence_cosines, offsets[has_sentences])
        best = np.where(np.isneginf(best), cosines, best)
    return (1.0 - sentence_weight) * cosines + sentence_weight * best
