"""Summaries the benchmark phases share: latency percentiles and ratios, pure and untimed.

In scope: turning lists of measured milliseconds into the figures a report prints (median, p90,
p99, max), and ratios that are None rather than a division by zero. Left out: measuring (each
phase times its own work) and verdicts against targets (`eval.bench.report`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values`, linear interpolation (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latency_summary(milliseconds: Sequence[float]) -> dict[str, float | int]:
    """Count, median, p90, p99, max and mean of latencies in milliseconds, rounded for a report."""
    if not milliseconds:
        return {"n": 0}
    return {
        "n": len(milliseconds),
        "p50_ms": round(percentile(milliseconds, 50), 2),
        "p90_ms": round(percentile(milliseconds, 90), 2),
        "p99_ms": round(percentile(milliseconds, 99), 2),
        "max_ms": round(max(milliseconds), 2),
        "mean_ms": round(float(np.mean(milliseconds)), 2),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator rounded to 3 places, or None when either is missing or zero."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)
