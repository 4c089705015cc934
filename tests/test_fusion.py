"""Fusion on tiny hand-worked cases."""

from __future__ import annotations

import pytest

from index.fusion import convex_combination, reciprocal_rank_fusion


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
    # w = 0.5; bm25 normalised by its max 4.0: a = .5*.8 + .5*1 = .9, b = .5*.6 + .5*.5 = .55, c = .5*.7 = .35
    fused = convex_combination({1: 0.8, 2: 0.6, 3: 0.7}, {1: 4.0, 2: 2.0}, dense_weight=0.5)
    assert [row for row, _ in fused] == [1, 2, 3]
    assert [score for _, score in fused] == pytest.approx([0.9, 0.55, 0.35])


def test_convex_without_lexical_scores_is_dense_order() -> None:
    fused = convex_combination({1: 0.2, 2: 0.9}, {}, dense_weight=0.3)
    assert fused == [(2, pytest.approx(0.27)), (1, pytest.approx(0.06))]
