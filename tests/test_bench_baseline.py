"""The baseline phase's pure parts: which ref it measures against, the current-against-baseline
rows, what counts as a regression and how the report shows it (hand-made figures; nothing here
serves, builds or times anything)."""

from __future__ import annotations

from typing import Any

import pytest

from eval.bench.baseline import choose_baseline
from eval.bench.baseline_report import baseline_targets, by_round, comparison, regressions
from eval.bench.load import LoadFigures, pooled
from eval.bench.report import render_markdown

FLOOR = {"single_ms_p50": 15.0, "single_per_s": 60.0, "batch8_per_s": 150.0, "torch_single_ms_p50": 14.0}


def _side(p50: float, per_s: float, p95: float = 40.0, p99: float = 600.0) -> dict[str, Any]:
    return {
        "c1": {"p50_ms": p50, "p95_ms": p95, "p99_ms": p95, "per_s": 1000 / p50, "errors": 0},
        "c32": {"p50_ms": 300.0, "p95_ms": 500.0, "p99_ms": p99, "per_s": per_s, "errors": 0},
    }


def _rows(current: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {row["figure"]: row for row in comparison(current, baseline, FLOOR)}


def test_a_given_ref_wins_and_none_means_no_baseline() -> None:
    assert choose_baseline("f189e42~5", ["v2.0"], set(), ["main"], []).ref == "f189e42~5"
    for word in ("none", "None", ""):
        choice = choose_baseline(word, ["v2.0"], set(), ["main"], [])
        assert choice.ref is None
        assert "--baseline" in choice.reason


def test_the_newest_release_before_head_is_the_default() -> None:
    assert choose_baseline(None, ["v1.10", "v1.9", "v1.2"], set(), ["origin/main"], []).ref == "v1.10"
    # HEAD is the release itself: measured against the one before it, not against itself.
    assert choose_baseline(None, ["v1.10", "v1.9"], {"v1.10"}, [], []).ref == "v1.9"


def test_without_a_release_main_if_it_is_not_head_then_head_under_a_changed_tree() -> None:
    assert choose_baseline(None, [], set(), ["origin/main", "main"], []).ref == "origin/main"
    assert choose_baseline(None, ["v1.0"], {"v1.0"}, ["main"], []).ref == "main"
    changed = choose_baseline(None, [], set(), [], ["index/search/reader.py"])
    assert changed.ref == "HEAD"
    nothing = choose_baseline(None, [], set(), [], ["docs/performance.md", "eval/bench/load.py"])
    assert nothing.ref is None
    assert "--baseline REF" in nothing.reason


def test_ratios_are_current_over_baseline_and_the_regression_of_the_issue_is_flagged() -> None:
    # The regression that went unnoticed: c=1 p50 22 -> 32 ms, c=32 100 -> 64 queries/s.
    rows = _rows(_side(32.0, 64.0), _side(22.0, 100.0))
    assert rows["c1_p50"]["ratio"] == pytest.approx(1.455, abs=1e-3)
    assert rows["c32_per_s"]["ratio"] == pytest.approx(0.64)
    assert rows["c1_p50"]["flagged"] and rows["c32_per_s"]["flagged"]
    assert rows["c1_p50"]["reason"] == "more than 10% higher than the baseline's"
    assert rows["c32_per_s"]["reason"] == "more than 10% lower than the baseline's"
    assert rows["c1_p50"]["current_to_floor"] == pytest.approx(32 / 15, abs=1e-3)
    assert rows["c1_p50"]["baseline_to_floor"] == pytest.approx(22 / 15, abs=1e-3)
    assert regressions(list(rows.values())) == [
        "c=1 p50 ms 1.46x: more than 10% higher than the baseline's",
        "c=32 queries/s 0.64x: more than 10% lower than the baseline's",
    ]


def test_changes_within_the_threshold_and_tails_are_not_flagged() -> None:
    # 9% slower and 9% lower throughput: within 10%. The p99 tripled: reported, never flagged.
    rows = _rows(_side(21.8, 91.0, p99=1800.0), _side(20.0, 100.0))
    assert not any(row["flagged"] for row in rows.values())
    assert rows["c32_p99"]["ratio"] == pytest.approx(3.0)
    # Faster is never a regression, however large the change.
    faster = _rows(_side(10.0, 200.0), _side(20.0, 100.0))
    assert not any(row["flagged"] for row in faster.values())


def test_without_a_baseline_the_floor_targets_are_the_flags() -> None:
    # 21 ms against a 15 ms floor is 1.4x (target <= 1.3x); 140/s against 150/s in batches of 8 is
    # 0.93x (target >= 0.9x).
    rows = _rows(_side(21.0, 140.0), None)
    assert rows["c1_p50"]["ratio"] is None and rows["c1_p50"]["baseline"] is None
    assert rows["c1_p50"]["flagged"] and rows["c1_p50"]["reason"] == "the floor target is <= 1.3x"
    assert regressions(list(rows.values())) == ["c=1 p50 ms 1.40x: the floor target is <= 1.3x"]
    assert not rows["c32_per_s"]["flagged"]


def _results(current: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    rows = comparison(current, baseline, FLOOR)
    guard: dict[str, Any] = {
        "baseline_ref": "v1.2" if baseline else None,
        "chosen": "the newest v* tag before HEAD" if baseline else "--baseline none",
        "current": {"commit": "f189e42", "modified": ["index/search/reader.py"]},
        "threshold": 0.1,
        "mode": "hybrid",
        "rounds": 4,
        "requests": {"c1": 80, "c32": 384},
        "floor": FLOOR,
        "comparison": rows,
        "regressions": regressions(rows),
        "servers": {"current": {"startup_s": 9.0, "peak_memory_mb": 700.0, "errors": 0}},
        "by_round": {"sides": ["current"], "c1_p50": [[32.0], [31.5]], "c32_per_s": [[64.0], [65.0]]},
    }
    if baseline:
        guard["baseline_commit"] = "23e747c"
    return {"started": "2026-12-03 18:00:00 UTC", "cpus": 2, "baseline": guard}


def test_the_report_bolds_a_regression_in_the_table_and_the_targets() -> None:
    results = _results(_side(32.0, 64.0), _side(22.0, 100.0))
    (target,) = baseline_targets(results)
    assert "`v1.2` (23e747c)" in target[0]
    assert target[1] == "c=1 p50 ms 1.46x, c=32 queries/s 0.64x"
    assert target[2] == "**NOT met**"
    markdown = render_markdown(results)
    row = "| **c=1 p50 ms** | **32.0** | 22.0 | **1.46x: more than 10% higher than the baseline's** |"
    assert row in markdown
    assert "**Regression: c=1 p50 ms 1.46x: " in markdown
    assert "| c=1 p95 ms | 40.0 | 40.0 | 1.00x |" in markdown  # reported, not bold
    assert "modified: index/search/reader.py" in markdown


def test_the_report_says_when_there_was_no_baseline() -> None:
    results = _results(_side(14.0, 140.0), None)
    markdown = render_markdown(results)
    assert "Baseline: **none** (--baseline none)" in markdown
    assert "Every floor target met." in markdown
    assert baseline_targets(results)[0][2] == "met"
    failed = render_markdown({"baseline": {"error": "ServerError: no answer"}})
    assert "**The phase failed**: ServerError: no answer" in failed


def test_the_ratio_is_the_median_of_the_rounds_so_one_burst_does_not_flag() -> None:
    # Round 2's current run was hit by a burst of load from elsewhere (102 ms, 20 q/s): the
    # pooled figures would call it a regression, the rounds' own ratios do not.
    rounds = (
        [_side(22.9, 43.0), _side(101.7, 20.0), _side(23.5, 42.0)],
        [
            _side(23.8, 42.5),
            _side(22.7, 43.0),
            _side(23.0, 42.0),
        ],
    )
    table = by_round({"current": rounds[0], "baseline": rounds[1]})
    assert table["sides"] == ["current", "baseline"]
    assert table["c1_p50"] == [[22.9, 23.8], [101.7, 22.7], [23.5, 23.0]]
    pooled_current, pooled_baseline = _side(49.0, 30.0), _side(23.2, 42.5)
    rows = {row["figure"]: row for row in comparison(pooled_current, pooled_baseline, FLOOR, table)}
    assert rows["c1_p50"]["round_ratios"] == [0.962, 4.48, 1.022]
    assert rows["c1_p50"]["ratio"] == pytest.approx(1.022)
    assert rows["c1_p50"]["pooled_ratio"] == pytest.approx(2.112, abs=1e-3)
    assert rows["c32_per_s"]["ratio"] == pytest.approx(1.0, abs=0.02)
    assert not any(row["flagged"] for row in rows.values())
    # The same burst in every round is the code, not the machine: flagged.
    slow = by_round({"current": [_side(40.0, 30.0)] * 3, "baseline": rounds[1]})
    rows = {row["figure"]: row for row in comparison(pooled_current, pooled_baseline, FLOOR, slow)}
    assert rows["c1_p50"]["flagged"] and rows["c32_per_s"]["flagged"]


def _run(latencies_ms: list[float], seconds: float) -> LoadFigures:
    return LoadFigures("hybrid", 1, len(latencies_ms), 0, seconds, 0, 0, 0, 0.1, 0.5, tuple(latencies_ms))


def test_pooled_runs_take_percentiles_over_every_request() -> None:
    # The runs' own medians are 10 and 25 ms; over all 9 requests the median is 20 ms.
    together = pooled([_run([10.0, 10.0, 20.0], 1.0), _run([20.0, 20.0, 30.0, 30.0, 30.0, 20.0], 2.0)])
    assert together.requests == 9
    assert together.p50_ms == pytest.approx(20.0)
    assert together.per_s == pytest.approx(3.0)
    assert together.server_cpu_seconds == pytest.approx(1.0)
    with pytest.raises(ValueError):
        pooled([])
