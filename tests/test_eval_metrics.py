"""Eval metrics (ranx) and answer judging on tiny hand-worked cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from eval.backends import best_passage_per_document
from eval.metrics import (
    BEIR_METRICS,
    PROJECT_METRICS,
    mean_scores,
    paired_test,
    per_query_scores,
    ranking_from_order,
)
from eval.report import EvalReport, ModeResult, Significance, render_table, write_trec_run
from eval.runner import contains_answer, covers_answer

# q1: relevant d1 at rank 2. q2: relevant d2, d3; d3 at rank 1, d2 at rank 3. q3: nothing retrieved.
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}, "q3": {"x": 1}}
RUN = {"q1": ranking_from_order(["d0", "d1"]), "q2": ranking_from_order(["d3", "d9", "d2"]), "q3": {}}


def test_project_metrics_hand_worked() -> None:
    scores = per_query_scores(QRELS, RUN, PROJECT_METRICS)
    assert scores["hit_rate@1"].tolist() == [0.0, 1.0, 0.0]
    assert scores["hit_rate@3"].tolist() == [1.0, 1.0, 0.0]
    assert scores["mrr@10"].tolist() == [0.5, 1.0, 0.0]
    # q1: 1/log2(3) / 1; q2: (1/log2(2) + 1/log2(4)) / (1/log2(2) + 1/log2(3))
    expected_q2 = (1 + 1 / 2) / (1 + 1 / math.log2(3))
    assert scores["ndcg@10"] == pytest.approx([1 / math.log2(3), expected_q2, 0.0])
    assert mean_scores(scores)["mrr@10"] == pytest.approx(0.5)


def test_beir_recall_hand_worked() -> None:
    scores = per_query_scores(QRELS, RUN, BEIR_METRICS)
    assert scores["recall@1"].tolist() == [0.0, 0.5, 0.0]
    assert scores["recall@3"].tolist() == [1.0, 1.0, 0.0]
    assert scores["recall@100"].tolist() == [1.0, 1.0, 0.0]


def test_ranking_from_order_keeps_the_order_and_the_first_of_repeats() -> None:
    ranking = ranking_from_order(["a", "b", "a", "c"])
    assert sorted(ranking, key=lambda doc: -ranking[doc]) == ["a", "b", "c"]


def test_paired_test_separates_a_clear_difference_from_none() -> None:
    baseline = np.array([0.0, 0.1, 0.0, 0.2, 0.1, 0.0, 0.1, 0.0, 0.2, 0.1])
    better = baseline + np.array([0.9, 0.8, 0.9, 0.7, 0.8, 0.9, 0.8, 0.9, 0.7, 0.8])
    assert paired_test(baseline, better, "student").significant
    same = paired_test(baseline, baseline.copy(), "student")
    assert not same.significant and same.p_value == 1.0
    with pytest.raises(ValueError, match="same queries"):
        paired_test(baseline, better[:3], "student")


def test_answer_judging_normalises_quotes_and_spaces() -> None:
    assert contains_answer("Iran’s  security chief Ali Larijani said", ["Iran's security chief"])
    assert not contains_answer("Iran's security", ["Iran's security chief"])
    # A sentence covering half of a gold answer that spans a sentence boundary still counts.
    assert covers_answer("It could link Central Asia to the Arabian Sea.", ["to the Arabian Sea. Trade"])
    assert not covers_answer("Something else entirely.", ["linking Central Asia to the Arabian Sea"])


def test_documents_are_ranked_by_their_best_passage() -> None:
    ranked = best_passage_per_document([("a", 0.9), ("b", 0.8), ("a", 0.7), ("c", 0.6)], depth=2)
    assert ranked.ids == ["a", "b"] and ranked.scores == [0.9, 0.8]


def test_trec_run_and_table(tmp_path: Path) -> None:
    write_trec_run(tmp_path / "hybrid.trec", {"q1": [("d1", 2.5), ("d2", 1.0)]}, "hybrid")
    assert (tmp_path / "hybrid.trec").read_text().splitlines() == [
        "q1 Q0 d1 1 2.500000 hybrid",
        "q1 Q0 d2 2 1.000000 hybrid",
    ]
    abstention = {"unanswerable": 2, "unanswerable_flagged": 1, "answerable": 3, "answerable_flagged": 0}
    report = EvalReport(
        "set",
        "project",
        5,
        "dense",
        "student",
        0.05,
        [
            ModeResult("dense", {"hit_rate@1": 0.5}, abstention=abstention),
            ModeResult("hybrid", {"hit_rate@1": 0.75}, {"hit_rate@1": Significance(0.01, True)}, abstention),
        ],
    )
    table = render_table(report)
    assert "| hybrid | 0.750* | 1/2 | 0/3 |" in table
    assert "| dense | 0.500 | 1/2 | 0/3 |" in table
