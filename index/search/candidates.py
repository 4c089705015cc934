"""The first stage of a search: candidate passages from each signal, and the dense signal.

`dense_candidates` asks the vector index for the passages nearest the query vector (cosine);
`lexical_candidates` asks BM25 for the passages with the best positive score (the query's terms
and collection statistics, computed once per search in `Query`). Each returns a
`Candidates` list, best first, that later stages (fusion, explanations, document ranking) read.
`dense_scores` is hybrid mode's dense signal for any passage, candidate or not:

``dense(p) = (1 - s) * cos(q, p) + s * max over p's sentences t of cos(q, t)``

with ``s`` the sentence weight. A question usually asks about one sentence, which a passage
vector dilutes. Sentences that are themselves questions (an interviewer's, a rhetorical one) are
left out of the max: they resemble every user question but never answer one. A passage without
sentence vectors (a ranking-only index) or with only questions uses its passage cosine.
Out of scope: fusing the signals (`index.search.fusion`) and everything after.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.embedding import Vectors
from index.search.passage_index import PassageIndex
from index.search.query import Query
from index.storage.fields import Mask


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


def dense_candidates(
    reader: PassageIndex, vector: Vectors, limit: int, allowed: Mask | None = None
) -> Candidates:
    """The `limit` passages nearest `vector`, among the `allowed` ones when given (a query's)."""
    return Candidates(*reader.dense_search(vector.reshape(-1), limit, allowed))


def lexical_candidates(query: Query, limit: int, k1: float, b: float) -> Candidates:
    """The `limit` passages with the best BM25 score, among those the query's filter allows."""
    reader = query.reader
    return Candidates(*reader.lexical_search(query.terms, limit, k1, b, query.statistics, query.allowed))


def dense_scores(query: Query, rows: list[int], sentence_weight: float) -> npt.NDArray[np.float64]:
    """The dense signal of each of `rows` (formula in the module docstring), in float64 so that
    equal inputs give equal scores and rankings whatever the batch. The passage and sentence
    cosines it computes are kept in `query` for the later stages."""
    vector = query.vector
    order, cosines, counts, sentence_cosines = [], [], [], []
    # Each part (a segment of a reader) scores only its own rows;
    # the rest runs once over all parts' cosines, so a query pays little per segment.
    for part in query.reader.scored_passages(vector, rows, with_sentences=sentence_weight > 0):
        order.append(part.positions)
        query.keep_passage_cosines([rows[position] for position in part.positions.tolist()], part.cosines)
        cosines.append(part.cosines)
        if part.sentences is not None:
            counts.append(part.sentences.counts)
            query.keep_sentence_cosines(part.sentences.rows.tolist(), part.sentences.cosines)
            sentence_cosines.append(np.where(part.sentences.questions, -np.inf, part.sentences.cosines))
        else:
            counts.append(np.zeros(len(part.positions), dtype=np.int64))
    scores = np.zeros(len(rows), dtype=np.float64)
    if not order:
        return scores
    passage = np.concatenate(cosines).astype(np.float64)
    best = passage.copy()
    if sentence_cosines:
        sentence = np.concatenate(sentence_cosines).astype(np.float64)
        all_counts = np.concatenate(counts)
        has_sentences = all_counts > 0
        if len(sentence):
            offsets = np.cumsum(all_counts) - all_counts
            best[has_sentences] = np.maximum.reduceat(sentence, offsets[has_sentences])
        best = np.where(np.isneginf(best), passage, best)
    scores[np.concatenate(order)] = (1.0 - sentence_weight) * passage + sentence_weight * best
    return scores
