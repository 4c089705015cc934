"""The benchmark's verdicts against its targets, on hand-made figures."""

from __future__ import annotations

from typing import Any

from eval.bench.report import render_markdown, targets


def _results(**extra: Any) -> dict[str, Any]:
    return {
        "started": "2026-11-21 06:20:49 UTC",
        "cpus": 2,
        "floor": {
            "questions_before_http": {
                "single_ms_p50": 20.0,
                "single_per_s": 40.0,
                "torch_single_ms_p50": 16.0,
                "batch8_per_s": 64.0,
                "batch32_per_s": 50.0,
            }
        },
        "http": {
            "runs": [
                {
                    "mode": "hybrid",
                    "concurrency": 1,
                    "p50_ms": 25.0,
                    "per_s": 38.0,
                    "p95_ms": 28.0,
                    "p99_ms": 30.0,
                    "server_cores": 1.5,
                    "client_cores": 0.1,
                },
                {
                    "mode": "hybrid",
                    "concurrency": 32,
                    "p50_ms": 400.0,
                    "per_s": 61.0,
                    "p95_ms": 600.0,
                    "p99_ms": 700.0,
                    "server_cores": 1.5,
                    "client_cores": 0.3,
                },
            ]
        },
        **extra,
    }


def test_latency_and_throughput_ratios_are_against_the_floor_of_the_same_run() -> None:
    verdicts = {target: (measured, verdict) for target, measured, verdict in targets(_results())}
    assert verdicts["c=1 p50 over HTTP <= 1.3x bare question encoding"] == (
        "25.0 ms vs 20.0 ms = 1.25x",
        "met",
    )
    against_service = verdicts["(for reference) c=1 p50 over HTTP against the model's own `encode` (PyTorch)"]
    assert against_service == ("25.0 ms vs 16.0 ms = 1.56x", "reported")
    # Against the best batched rate (batches of 8 here): 61 / 64 = 0.95.
    assert verdicts["c=32 throughput >= 0.9x the model's best batched question encoding"] == (
        "61/s vs 64/s = 0.95x (load generator: 0.30 cores)",
        "met",
    )
    assert verdicts["c=32 p99 <= 250 ms"] == ("700 ms", "NOT met")


def test_onnx_qualifies_unless_some_eval_set_loses_more_than_the_margin() -> None:
    def verdict(deltas: dict[str, float]) -> tuple[str, str]:
        onnx = {"ndcg_deltas": deltas, "speedup": 3.0}
        (line,) = [t for t in targets(_results(onnx=onnx)) if t[0].startswith("ONNX")]
        return line[1], line[2]

    assert verdict({"seed hybrid": 0.002, "scifact hybrid": 0.011}) == (
        "deltas +0.0020 to +0.0110, 3.00x faster passages",
        "met",
    )
    assert verdict({"seed hybrid": -0.0049, "scifact hybrid": 0.011})[1] == "met"
    assert verdict({"seed hybrid": -0.019, "scifact hybrid": 0.001})[1] == "NOT met"


def test_a_rerun_says_which_figures_it_replaced() -> None:
    markdown = render_markdown(_results(http_rerun="2026-11-21 06:56:39 UTC"))
    assert "measured again, together, at 2026-11-21 06:56:39 UTC" in markdown
    assert "measured again" not in render_markdown(_results())
    assert "ONNX comparison was run again at 07:02" in render_markdown(_results(onnx_rerun="07:02"))


def test_a_report_of_phases_alone_says_how_it_was_made() -> None:
    phases_only = render_markdown({"started": "07:00", "cpus": 2, "phase_runs": {}})
    assert "Produced by `python -m eval.bench --phase ...`" in phases_only
    assert "Produced by `make bench`" in render_markdown(_results())
