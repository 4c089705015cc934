"""Fusion on tiny hand-worked cases."""

from __future__ import annotations

import pytest

from index.search.fusion import convex_combination, reciprocal_rank_fusion


def test_rrf_hand_worked() -> None:
    # k = 1: a (ranks 1 and 2) = 1/2 + 1/3 = 0.8333; b (2, -) = 1/3; c (-, 1) = 1/2.
    fused = reciprocal_rank_fusion([[10, 20], [30, 10]], k=1)
    assert [row for row, _ in fused] == [10, 30, 20]
    assert fused[0][1] == pytest.approx(1 / 2 + 1 / 3)
    assert fused[1][1] == pytest.approx(1 / 2)
    assert fused[2][1] == pytest.approx(1 / 3)


def test_rrf_weights_and_ties() -> None:
    fused = reciprocal_rank_fusion([[1], [2]], k=60, weights=[2.0, 1.0])
    assert [row for row, _ in fused] == [1, 2]
    assert [row for row, _ in reciprocal_rank_fusion([[5], [3]], k=60)] == [3, 5]  # tie: lower row first


def test_convex_hand_worked() -> None:
    # w = 0.5 over the union {1, 2, 3}; all related (1 and 2 share terms, 3's cosine is over .2),
    # so the dense scale runs from .5 to 1: 1/0/.5; bm25 over the best, 4: 1/.5/0 (row 3 has no
    # bm25 score, so 0 there); fused 1.0, .25, .25: the tie goes to the
    # better dense score, row 3 (.75) before row 2 (.5).
    fused = convex_combination(
        {1: 1.0, 2: 0.5, 3: 0.75}, {1: 4.0, 2: 2.0}, dense_weight=0.5, related_cosine=0.2
    )
    assert [row for row, _ in fused] == [1, 3, 2]
    assert [score for _, score in fused] == pytest.approx([1.0, 0.25, 0.25])


def test_convex_without_lexical_scores_is_dense_order() -> None:
    # dense .2/.9 -> 0/1, weighted by .3
    fused = convex_combination({1: 0.2, 2: 0.9}, {}, dense_weight=0.3, related_cosine=0.2)
    assert [row for row, _ in fused] == [2, 1]
    assert [score for _, score in fused] == pytest.approx([0.3, 0.0])


def test_an_unrelated_candidate_changes_no_other_score() -> None:
    # Row 9 shares no term (no bm25 score) and lies far (cosine .05 < .2): it never sets the
    # bottom of the dense scale, so every other fused score is exactly what it was without it.
    dense, lexical = {1: 0.8, 2: 0.5, 3: 0.35}, {1: 4.0, 2: 1.0}
    alone = dict(convex_combination(dense, lexical, dense_weight=0.7, related_cosine=0.2))
    joined = dict(convex_combination({**dense, 9: 0.05}, lexical, dense_weight=0.7, related_cosine=0.2))
    assert {row: joined[row] for row in alone} == alone and joined[9] == 0.0
    # A related one (sharing a term) may, as min-max scaling let any candidate do.
    shared = dict(
        convex_combination({**dense, 9: 0.05}, {**lexical, 9: 0.5}, dense_weight=0.7, related_cosine=0.2)
    )
    assert shared[3] > alone[3]
