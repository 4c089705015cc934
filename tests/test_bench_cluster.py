"""The cluster phase's pure parts: its ratios, its targets and its report section, on hand-made
figures (nothing here starts Ray, serves, builds or times anything)."""

from __future__ import annotations

from typing import Any

from eval.bench.cluster_report import (
    NOT_SERVED,
    build_summary,
    bulk_job_summary,
    cluster_targets,
    ingest_summary,
    not_served_reason,
    query_summary,
    summarize,
)
from eval.bench.cluster_serving import descendants
from eval.bench.machine import CpuSnapshot
from eval.bench.report import render_markdown

REFUSED = {
    "status": 501,
    "ms": 4.0,
    "code": "not_supported_in_cluster_mode",
    "message": "the sharded service does not serve adding documents yet",
}


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


def _figures(sharded_ingest: dict[str, Any]) -> dict[str, Any]:
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
        "ingest": {
            "clients": 8,
            "writers": 1,
            "single": _ingest_side(500.0, 200.0, 300.0),
            "sharded": sharded_ingest,
        },
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


def test_a_501_from_the_sharded_service_is_reported_as_writes_not_served() -> None:
    assert not_served_reason(REFUSED) == NOT_SERVED
    assert not_served_reason({"status": 200}) is None
    assert "403" in str(not_served_reason({"status": 403, "code": "admin_key_required", "message": "no"}))
    assert ingest_summary({"probe": REFUSED, "not_served": NOT_SERVED}) == {
        "served": False,
        "reason": NOT_SERVED,
    }
    summary = summarize(_figures({"probe": REFUSED, "not_served": NOT_SERVED}))
    assert summary["ingest"]["single"]["p99_ratio"] == 1.5
    assert summary["ingest"]["single"]["write_p50_ms"] == 500.0
    results = {"cpus": 2, "cluster": {**_figures({"probe": REFUSED}), "summary": summary}}
    lines = {target: (measured, verdict) for target, measured, verdict in cluster_targets(results)}
    write = next(key for key in lines if "write p50" in key)
    assert lines[write] == (NOT_SERVED, "not measured")
    c1 = next(key for key in lines if "c=1 p50" in key)
    assert lines[c1] == ("36.0 ms vs 20.0 ms = 1.80x", "NOT met")
    markdown = render_markdown(results)
    assert "## Cluster: distributed build and sharded serving" in markdown
    assert f"| sharded | {NOT_SERVED} |" in markdown
    assert "2 actors against 1: **1.50x**" in markdown


def test_served_writes_are_held_against_the_targets() -> None:
    summary = summarize(_figures(_ingest_side(120.0, 200.0, 230.0)))
    results = {"cluster": {**_figures({}), "summary": summary}}
    verdicts = {target: verdict for target, _, verdict in cluster_targets(results)}
    assert verdicts["sharded service: write p50 under the ingest load <= 150 ms"] == "met"
    assert verdicts["sharded service: query p99 during ingest <= 1.2x idle"] == "met"
    summary = summarize(_figures(_ingest_side(160.0, 200.0, 260.0)))
    verdicts = {t: v for t, _, v in cluster_targets({"cluster": {"summary": summary}})}
    assert set(v for t, v in verdicts.items() if "sharded service:" in t) == {"NOT met"}


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
