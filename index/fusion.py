"""Fusion of a dense and a lexical ranking into one.

Two methods, both over candidate lists of (row, score), best first:

* Reciprocal rank fusion (Cormack et al., 2009): ``fused(d) = sum_r w_r / (k + rank_r(d))`` with
  1-based ranks, summed over the rankings r that contain d. Scale-free; k dampens the head.
* Convex combination of normalised scores: ``fused(d) = w * dense(d) + (1 - w) * bm25(d) / max
  bm25``, where a document missing from the lexical list scores 0 there, and the dense score of a
  document missing from the dense list is its exact cosine (passed in by the caller).

Both return rows sorted by fused score, ties broken by the row number so results are stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: float = 60.0, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def convex_combination(
    dense_scores: Mapping[int, float], lexical_scores: Mapping[int, float], dense_weight: float
) -> list[tuple[int, float]]:
    top_lexical = max(lexical_scores.values(), default=0.0)
    fused: dict[int, float] = {}
    for row in set(dense_scores) | set(lexical_scores):
        lexical = lexical_scores.get(row, 0.0) / top_lexical if top_lexical > 0 else 0.0
        fused[row] = dense_weight * dense_scores.get(row, 0.0) + (1.0 - dense_weight) * lexical
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
