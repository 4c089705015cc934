"""The `pq` phase's pure helpers (recall, exact re-ranking) and its report section, on hand-made
figures: nothing here builds a large index or is timed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from eval.bench.compressed import recall_at, rerank
from eval.bench.compressed_report import pq_table
from eval.bench.report import render_markdown


def test_recall_is_the_mean_share_of_the_exact_top_k_found_whatever_the_order() -> None:
    truth = [[1, 2, 3, 4], [5, 6, 7, 8]]
    # Query 1: 3 of 4 (order ignored); query 2: 2 of 4, the -1 ("nothing found") never counts.
    found = [[3, 2, 1, 9], [8, 5, -1, -1]]
    assert recall_at(found, truth, k=4) == pytest.approx((3 / 4 + 2 / 4) / 2)
    # Only the first k of each list: 7 is the 3rd found but k = 2.
    assert recall_at([[5, 9, 7]], [[5, 7, 6]], k=2) == pytest.approx(1 / 2)
    with pytest.raises(ValueError):
        recall_at([], [])


def test_rerank_orders_the_shortlist_by_exact_score_ties_to_the_lower_row() -> None:
    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6], [0.8, 0.6]], dtype=np.float32)
    query = np.array([1, 0], dtype=np.float32)
    # Scores 0 (row 1), 0.8 (rows 3 and 4: tie, 3 first), 1 (row 0); -1 is no candidate; row 2
    # (0.6) was not in the shortlist, so it cannot come back.
    shortlist = np.array([4, 1, -1, 3, 0], dtype=np.int64)
    assert rerank(query, shortlist, vectors, k=3) == [0, 3, 4]
    assert rerank(query, shortlist, vectors, k=10) == [0, 3, 4, 1]


def _row(index: str, depth: int, recall: float) -> dict[str, Any]:
    return {
        "index": index,
        "rerank": depth,
        "recall_at_10": recall,
        "p50_ms": 1.5,
        "p90_ms": 2.5,
        "timed_queries": 10,
        "bytes_per_vector": 67.2,
        "code_bytes": 48,
        "float32_read_per_query": depth * 1536,
        "train_s": 3.0,
        "train_cpu_s": 2.5,
        "add_s": 4.0,
        "add_cpu_s": 3.5,
    }


def test_the_report_has_a_row_per_index_and_depth() -> None:
    figures = {
        "chunks": 1000,
        "queries": 10,
        "vectors": "hand-made",
        "dimension": 384,
        "lists": 64,
        "probes": 8,
        "training_vectors": 1000,
        "candidates": 100,
        "rows": [_row("IVF-PQ48", 0, 0.5), _row("IVF-PQ48", 40, 0.9)],
    }
    markdown = render_markdown({"pq": figures})
    assert "## Compressed vector indexes at 1,000 chunks" in markdown
    assert "| IVF-PQ48 | - | 0.500 | 1.50 | 2.50 | 67.2 | 48 | - | 3.0 (2.5) | 4.0 (3.5) |" in markdown
    assert (
        "| IVF-PQ48 | top 40 | 0.900 | 1.50 | 2.50 | 67.2 | 48 | 60 KiB | 3.0 (2.5) | 4.0 (3.5) |" in markdown
    )
    assert "top 40" in pq_table(figures).splitlines()[2]
