"""Fusion of a dense and a lexical ranking into one.

Three methods, all over candidate lists of (row, score), best first:

* Convex combination of normalised scores (the default; measured best on SciFact and the
  project set, see docs/evaluation.md):
  ``fused(d) = w * n(dense)(d) + (1 - w) * bm25(d) / max bm25`` over the union of both candidate
  lists, where a document missing from the lexical list scores 0 there and the dense score of a
  document missing from the dense list is its exact cosine (passed in by the caller), and
  ``n(s)(d) = max(s(d) - low, 0) / (max s - low)`` with ``low = min s(c)`` over the *related*
  candidates c: those sharing a term with the question (in the lexical list) or with a cosine
  of at least ``r`` (the related-cosine option). Plain min-max scaling took ``low`` from every
  candidate, so any unrelated passage that entered the pool (in a small corpus, every passage
  does) could set the scale and shift the balance between the signals; with ``low`` taken from
  related candidates only, adding documents that share no term with a question and lie far
  from it (cosine below ``r``) changes nothing for the others. BM25 is measured from 0, its
  least possible value. Scores keep their margins, which rank fusion throws away, and exact ties
  practically never happen.
* Reciprocal rank fusion (Cormack et al., 2009): ``fused(d) = sum_r w_r / (k + rank_r(d))`` with
  1-based ranks, summed over the rankings r that contain d. Scale-free; k dampens the head.

* Document-level convex combination (`document_convex_combination`): each signal is first
  reduced to one score per document, that of its best passage,
  ``D(d) = max_{p in d} dense(p)`` over the passages of d with a dense score (every candidate
  passage has its exact cosine) and ``L(d) = max_{p in d} bm25(p)`` over the passages of d in
  the lexical list (0 when none is), then normalised over the candidate documents and fused as
  above: ``fused(d) = w * n(D)(d) + (1 - w) * L(d) / max L``. Fusing per passage and then
  ranking a document at its best fused passage lets a document win on one passage's cosine and
  another passage's terms only if a single passage has both; per document, the two signals of
  the same document add up. Measured on SciFact train (docs/evaluation.md): +0.004 nDCG@10.

All return items sorted by fused score; remaining ties go to the better dense score (the caller
passes it as `tie_break`; per document, its `D`), then to the row number or document id, so
results are stable.

The hybrid search chooses its method once, from the options (`fusion_for`): an object with one
`fuse(dense, lexical, dense_scores)` call, not a switch on a string per query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from index.search.candidates import Candidates
from index.search.modes import FusionMethod
from index.search.options import RetrievalOptions

Key = TypeVar("Key", int, str)  # a passage row, or a document id
DenseScores = Callable[[list[int]], npt.NDArray[np.float64]]  # rows -> their dense signal


class Fusion(Protocol):
    @property
    def method(self) -> FusionMethod: ...

    def fuse(
        self, dense: Candidates, lexical: Candidates, dense_scores: DenseScores
    ) -> list[tuple[int, float]]:
        """Rows of both candidate lists with their fused score, best first. `dense_scores` gives
        the dense signal of any row (the convex combination needs it for lexical-only rows)."""
        ...


@dataclass(frozen=True)
class ConvexFusion:
    dense_weight: float
    related_cosine: float
    method: FusionMethod = FusionMethod.CONVEX

    def fuse(
        self, dense: Candidates, lexical: Candidates, dense_scores: DenseScores
    ) -> list[tuple[int, float]]:
        rows = list(dict.fromkeys(dense.rows + lexical.rows))
        lexical_scores = np.array([lexical.score.get(row, 0.0) for row in rows]) if lexical.rows else None
        return convex_combination_of_arrays(
            rows, dense_scores(rows), lexical_scores, self.dense_weight, self.related_cosine
        )


@dataclass(frozen=True)
class ReciprocalRankFusion:
    k: float
    method: FusionMethod = FusionMethod.RRF

    def fuse(
        self, dense: Candidates, lexical: Candidates, dense_scores: DenseScores
    ) -> list[tuple[int, float]]:
        return reciprocal_rank_fusion([dense.rows, lexical.rows], k=self.k)


def fusion_for(options: RetrievalOptions) -> Fusion:
    if options.fusion == FusionMethod.RRF:
        return ReciprocalRankFusion(options.rrf_k)
    return ConvexFusion(options.dense_weight, options.related_cosine)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]],
    k: float = 60.0,
    weights: Sequence[float] | None = None,
    tie_break: Mapping[int, float] | None = None,
) -> list[tuple[int, float]]:
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return _sorted(fused, tie_break or {})


def convex_combination(
    dense_scores: Mapping[int, float],
    lexical_scores: Mapping[int, float],
    dense_weight: float,
    related_cosine: float,
) -> list[tuple[int, float]]:
    return _convex(dense_scores, lexical_scores, dense_weight, related_cosine)


def max_per_document(scores: Mapping[int, float], document_of: Callable[[int], str]) -> dict[str, float]:
    """Each document's best passage score, ``S(d) = max_{p in d} s(p)`` over the passages scored."""
    best: dict[str, float] = {}
    for row, score in scores.items():
        document = document_of(row)
        if document not in best or score > best[document]:
            best[document] = score
    return best


def document_convex_combination(
    dense_scores: Mapping[int, float],
    lexical_scores: Mapping[int, float],
    document_of: Callable[[int], str],
    dense_weight: float,
    related_cosine: float,
) -> list[tuple[str, float]]:
    """Documents by ``w * n(D)(d) + (1 - w) * L(d) / max L``, with ``D`` and ``L`` each document's
    best passage score per signal (see the module docstring); `dense_scores` should cover every
    candidate passage (both lists), `lexical_scores` the lexical candidates."""
    return _convex(
        max_per_document(dense_scores, document_of),
        max_per_document(lexical_scores, document_of),
        dense_weight,
        related_cosine,
    )


def convex_combination_of_arrays(
    keys: Sequence[Key],
    dense_scores: npt.NDArray[np.float64],
    lexical_scores: npt.NDArray[np.float64] | None,
    dense_weight: float,
    related_cosine: float,
) -> list[tuple[Key, float]]:
    """The convex combination over aligned arrays: `keys[i]` has dense score `dense_scores[i]` and
    lexical score `lexical_scores[i]` (0 where it has none; None when no key has one). The same
    result as `convex_combination`, without a Python loop over the candidates (a query fuses
    ~200 of them)."""
    if len(keys) == 0:
        return []
    shares_terms = lexical_scores > 0 if lexical_scores is not None else np.zeros(len(keys), dtype=bool)
    related = shares_terms | (dense_scores >= related_cosine)
    fused = dense_weight * _scaled(
        dense_scores, float(dense_scores[related].min()) if related.any() else None
    )
    if lexical_scores is not None:
        fused = fused + (1.0 - dense_weight) * _scaled(lexical_scores, 0.0)
    # Best fused score first; ties to the better dense score, then to the smaller key.
    order = np.lexsort((np.asarray(keys), -dense_scores, -fused))
    return [(keys[i], float(fused[i])) for i in order.tolist()]


def _scaled(scores: npt.NDArray[np.float64], low: float | None) -> npt.NDArray[np.float64]:
    """``max(s - low, 0) / (max s - low)``: the best candidate 1, `low` and below 0. All equal
    (or one) -> all 1, so a lone candidate keeps its weight; no related candidate -> all 0."""
    if low is None:
        return np.zeros_like(scores)
    high = float(scores.max())
    if high <= low:
        return np.ones_like(scores)
    scaled: npt.NDArray[np.float64] = np.clip(scores - low, 0.0, None) / (high - low)
    return scaled


def _convex(
    dense_scores: Mapping[Key, float],
    lexical_scores: Mapping[Key, float],
    dense_weight: float,
    related_cosine: float,
) -> list[tuple[Key, float]]:
    keys: list[Key] = list(dense_scores)
    keys += [key for key in lexical_scores if key not in dense_scores]
    dense = np.array([dense_scores.get(key, 0.0) for key in keys], dtype=np.float64)
    lexical = (
        np.array([lexical_scores.get(key, 0.0) for key in keys], dtype=np.float64) if lexical_scores else None
    )
    return convex_combination_of_arrays(keys, dense, lexical, dense_weight, related_cosine)


def _sorted(fused: Mapping[int, float], tie_break: Mapping[int, float]) -> list[tuple[int, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], -tie_break.get(item[0], 0.0), item[0]))
