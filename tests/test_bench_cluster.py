"""The cluster phase's pure parts: its ratios, its targets and its report section, on hand-made
figures (nothing here starts Ray, serves, builds or times anything)."""

from __future__ import annotations

from typing import Any

from eval.bench.cluster_report import (
    build_summary,
    bulk_job_summary,
    cluster_targets,
    ingest_summary,
    query_summary,
    summarize,
)
from eval.bench.cluster_serving import descendants
from eval.bench.machine import CpuSnapshot
from eval.bench.report import render_markdown

REFUSED = {"status": 403, "ms": 4.0, "code": "api_key_required", "message": "writes need a key"}
WRITE_TARGET = "sharded service, the fake embedder: write p50 under the ingest load <= 150 ms"
P99_TARGET = "sharded service, the fake embedder: query p99 during ingest <= 1.2x idle"


def _build(chunks_per_s: float, **more: Any) -> dict[str, Any]:
    return {
        "documents": 103,
        "chunks": 300,
        "seconds": 300 / chunks_per_s,
        "chunks_per_s": chunks_per_s,
        **more,
    }


def _side(c1_p50: float, c32_per_s: float) -> dict[str, Any]:
    return {
        "c1": {
            "p50_ms": c1_p50,
            "p99_ms": 2 * c1_p50,
            "per_s": 1000 / c1_p50,
            "server_cores": 1.0,
            "errors": 0,
        },
        "c32": {"p50_ms": 300.0, "p99_ms": 600.0, "per_s": c32_per_s, "server_cores": 2.0, "errors": 1},
    }


def _ingest_side(write_p50: float, idle_p99: float, busy_p99: float) -> dict[str, Any]:
    return {
        "probe": {"status": 200, "ms": 80.0},
        "idle": {"query": {"p99_ms": idle_p99}, "queries_per_s": 40.0, "errors": 0},
        "ingest": {
            "query": {"p99_ms": busy_p99},
            "queries_per_s": 30.0,
            "errors": 1,
            "writes": 20,
            "write": {"p50_ms": write_p50},
        },
    }


def _ingest(sharded: dict[str, Any], single_write_p50: float = 500.0) -> dict[str, Any]:
    return {
        "clients": 8,
        "writers": 1,
        "idle_seconds": 60.0,
        "ingest_seconds": 120.0,
        "single": _ingest_side(single_write_p50, 200.0, 300.0),
        "sharded": sharded,
    }


def _figures(sharded_fake: dict[str, Any], sharded_real: dict[str, Any] | None = None) -> dict[str, Any]:
    """Figures of a whole phase; the real model's sharded ingest run is a slow one unless given."""
    return {
        "seed": "../shared/seed-articles",
        "documents": 103,
        "scifact_documents": 100,
        "shards": 3,
        "builds": {
            "single": _build(10.0),
            "cluster-1": _build(8.0, actors=1, nodes=1),
            "cluster-2": _build(12.0, actors=2, nodes=2),
            "sharded": _build(11.0, actors=2, nodes=2),
        },
        "queries": {
            "mode": "hybrid",
            "rounds": 1,
            "requests": {"c1": 20, "c32": 96},
            "runs": {"single": _side(20.0, 100.0), "sharded": _side(36.0, 50.0)},
        },
        "ingest": _ingest(sharded_real or _ingest_side(4000.0, 900.0, 1300.0), 3000.0),
        "ingest_fake": _ingest(sharded_fake),
    }


def test_build_ratios_are_two_actors_over_one_and_each_over_the_single_machine() -> None:
    ratios = build_summary(_figures({})["builds"])
    assert ratios == {
        "actors_2_to_1": 1.5,
        "cluster_1_to_single": 0.8,
        "cluster_2_to_single": 1.2,
        "sharded_to_single": 1.1,
    }
    assert build_summary({"single": _build(10.0)})["actors_2_to_1"] is None  # a build missing: no ratio


def test_query_rows_are_sharded_over_single() -> None:
    rows = {row["figure"]: row for row in query_summary(_figures({})["queries"]["runs"])}
    assert rows["c1_p50"] == {
        "figure": "c1_p50",
        "label": "c=1 p50 ms",
        "single": 20.0,
        "sharded": 36.0,
        "ratio": 1.8,
    }
    assert rows["c32_per_s"]["ratio"] == 0.5
    assert rows["c32_p99"]["ratio"] == 1.0
    assert (rows["c1_cpu_ms"]["single"], rows["c1_cpu_ms"]["sharded"]) == (20.0, 36.0)  # 1 core busy
    assert (rows["c32_cpu_ms"]["single"], rows["c32_cpu_ms"]["ratio"]) == (20.0, 2.0)
    assert (rows["errors"]["single"], rows["errors"]["sharded"]) == (1.0, 1.0)


def test_a_refused_probe_write_is_reported_instead_of_figures() -> None:
    reason = "POST /documents answered 403: api_key_required writes need a key"
    assert ingest_summary({"probe": REFUSED}) == {"served": False, "reason": reason}
    summary = summarize(_figures({"probe": REFUSED}))
    assert summary["ingest_fake"]["single"]["p99_ratio"] == 1.5
    assert summary["ingest_fake"]["single"]["write_p50_ms"] == 500.0
    results = {"cpus": 2, "cluster": {**_figures({"probe": REFUSED}), "summary": summary}}
    lines = {target: (measured, verdict) for target, measured, verdict in cluster_targets(results)}
    assert lines[WRITE_TARGET] == (reason, "not measured")
    c1 = next(key for key in lines if "c=1 p50" in key)
    assert lines[c1] == ("36.0 ms vs 20.0 ms = 1.80x", "NOT met")
    markdown = render_markdown(results)
    assert "## Cluster: distributed build and sharded serving" in markdown
    assert f"| the fake embedder | sharded | {reason} |" in markdown
    assert "2 actors against 1: **1.50x**" in markdown


def test_the_write_targets_are_judged_on_the_fake_embedder_and_the_real_model_reported() -> None:
    summary = summarize(_figures(_ingest_side(120.0, 200.0, 230.0)))
    results = {"cluster": {**_figures({}), "summary": summary}}
    verdicts = {target: verdict for target, _, verdict in cluster_targets(results)}
    assert verdicts[WRITE_TARGET] == "met"
    assert verdicts[P99_TARGET] == "met"
    real = {t: v for t, v in verdicts.items() if "the real model" in t}
    assert real == {
        "(reported) sharded service, the real model: write p50 under the ingest load <= 150 ms": "reported",
        "(reported) sharded service, the real model: query p99 during ingest <= 1.2x idle": "reported",
    }
    summary = summarize(_figures(_ingest_side(160.0, 200.0, 260.0), _ingest_side(100.0, 200.0, 210.0)))
    verdicts = {t: v for t, _, v in cluster_targets({"cluster": {"summary": summary}})}
    assert (verdicts[WRITE_TARGET], verdicts[P99_TARGET]) == ("NOT met", "NOT met")  # 1.3x
    markdown = render_markdown({"cluster": {**_figures({}), "summary": summary}})
    assert "| the real model | sharded | 20 | 100.0 | 200.0 | 210.0 | 1.05x | 40.0, 30.0 | 1 |" in markdown
    assert "| the fake embedder | single | 20 | 500.0 | 200.0 | 300.0 | 1.50x | 40.0, 30.0 | 1 |" in markdown


def test_a_failed_phase_shows_its_error_and_what_it_measured_before() -> None:
    figures = {"builds": {"single": _build(10.0)}, "error": "ClusterStartError: the head node exited"}
    results = {"cluster": {**figures, "summary": summarize(figures)}}
    markdown = render_markdown(results)
    assert "**The phase failed**, after what is shown: ClusterStartError: the head node exited" in markdown
    assert "`rag build` on this machine (one process) | 103 | 300 | 30.0 | 10.00" in markdown
    assert [line for line in cluster_targets(results) if "c=1 p50" in line[0]] == []


def _job(documents_per_s: float) -> dict[str, Any]:
    return {
        "seconds": 100 / documents_per_s,
        "documents_per_s": documents_per_s,
        "state": "succeeded",
        "documents_final": 100,
    }


def test_the_bulk_job_is_sharded_over_single_in_documents_per_second() -> None:
    bulk = {"documents": 100, "batch_size": 50, "single": _job(4.0), "sharded": _job(3.0)}
    assert bulk_job_summary(bulk) == {"single_per_s": 4.0, "sharded_per_s": 3.0, "ratio": 0.75}
    assert bulk_job_summary({}) is None
    figures = {**_figures(_ingest_side(120.0, 200.0, 230.0)), "bulk_job": bulk}
    markdown = render_markdown({"cluster": {**figures, "summary": summarize(figures)}})
    assert "the same 100 ~3 KB articles as one NDJSON job" in markdown
    assert "| sharded | 100 | 33.3 | 3.00 | succeeded |" in markdown
    assert "Sharded over single: **0.75x** documents/s." in markdown
    assert "bulk ingest job" not in render_markdown(
        {"cluster": {**_figures({}), "summary": summarize(_figures({}))}}
    )


def test_no_cluster_phase_adds_nothing_to_the_report() -> None:
    assert cluster_targets({}) == []
    assert "Cluster:" not in render_markdown({"started": "07:00", "cpus": 2, "phase_runs": {}})


def test_the_cluster_processes_are_the_nodes_and_everything_below_them() -> None:
    processes = {1: (0.0, 0), 10: (1.0, 1), 11: (2.0, 10), 12: (3.0, 11), 20: (4.0, 1), 21: (5.0, 20)}
    snapshot = CpuSnapshot(processes, 0.0, 0.0)
    assert descendants(snapshot, [10]) == {10, 11, 12}
    assert descendants(snapshot, [10, 20]) == {10, 11, 12, 20, 21}
