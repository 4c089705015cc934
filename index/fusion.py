"""Fusion of a dense and a lexical ranking into one.

Two methods, both over candidate lists of (row, score), best first:

* Convex combination of min-max normalised scores (the default; measured best on SciFact and the
  project set, see README "Evaluation"):
  ``fused(d) = w * mm(dense)(d) + (1 - w) * mm(bm25)(d)`` with
  ``mm(s)(d) = (s(d) - min s) / (max s - min s)`` over the union of both candidate lists, where a
  document missing from the lexical list scores 0 there and the dense score of a document missing
  from the dense list is its exact cosine (passed in by the caller). Scores keep their margins,
  which rank fusion throws away, and exact ties practically never happen.
* Reciprocal rank fusion (Cormack et al., 2009): ``fused(d) = sum_r w_r / (k + rank_r(d))`` with
  1-based ranks, summed over the rankings r that contain d. Scale-free; k dampens the head.

Both return rows sorted by fused score; remaining ties go to the better dense score (the caller
passes it as `tie_break`), then to the row number, so results are stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


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


def min_max(scores: Mapping[int, float]) -> dict[int, float]:
    """Scores rescaled to [0, 1]; all equal (or one) -> all 1, so a lone candidate keeps its weight."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict.fromkeys(scores, 1.0)
    return {row: (score - low) / (high - low) for row, score in scores.items()}


def convex_combination(
    dense_scores: Mapping[int, float], lexical_scores: Mapping[int, float], dense_weight: float
) -> list[tuple[int, float]]:
    rows = set(dense_scores) | set(lexical_scores)
    dense = min_max({row: dense_scores.get(row, 0.0) for row in rows})
    lexical = min_max({row: lexical_scores.get(row, 0.0) for row in rows}) if lexical_scores else {}
    fused = {
        row: dense_weight * dense.get(row, 0.0) + (1.0 - dense_weight) * lexical.get(row, 0.0) for row in rows
    }
    return _sorted(fused, dense_scores)


def _sorted(fused: Mapping[int, float], tie_break: Mapping[int, float]) -> list[tuple[int, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], -tie_break.get(item[0], 0.0), item[0]))
