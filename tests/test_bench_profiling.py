"""The profiler's sorting of py-spy samples into stages (eval/bench/profiling.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.bench.profiling import Breakdown, read_samples, stage_of

LOOP = "thread (1): MainThread;run (uvicorn/main.py:1);Runner.run (asyncio/runners.py:118)"
WORKER = "thread (2);Thread.run (threading.py:1);Engine._search_with (service/engine.py:1)"


def test_the_innermost_frame_with_a_marker_decides() -> None:
    bm25 = [
        *WORKER.split(";"),
        "lexical_search (index/search/reader.py:9)",
        "terms (index/text/analysis.py:3)",
    ]
    assert stage_of(bm25) == "query analysis (terms, statistics)"  # analysis inside BM25
    assert stage_of(bm25[:-1]) == "candidates: BM25"
    assert stage_of(LOOP.split(";")) == "idle (waiting)"  # uvloop's epoll, in native code
    assert stage_of([*LOOP.split(";"), "serialize_response (fastapi/routing.py:9)"]) == "JSON serialisation"
    assert stage_of(["thread (3)", "mystery (elsewhere.py:1)"]) == "other"


def test_samples_become_milliseconds_per_request(tmp_path: Path) -> None:
    raw = tmp_path / "samples.txt"
    dense = f"{WORKER};dense_search (index/search/reader.py:1)"
    raw.write_text(f"{dense} 30\n{LOOP} 500\n{dense} 20\n", "utf-8")
    samples = read_samples(raw)
    assert samples == {"candidates: dense": 50, "idle (waiting)": 500}
    breakdown = Breakdown(requests=10, rate=100, samples=samples)
    # 50 samples at 100 per second are 0.5 s of thread time, over 10 requests: 50 ms each.
    assert breakdown.per_request_ms("candidates: dense") == pytest.approx(50.0)
    assert breakdown.rows() == [("candidates: dense", pytest.approx(50.0), 1.0)]  # idle left out
