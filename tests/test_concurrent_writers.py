"""8 concurrent writers against a real server: grouped commits, segments under their ceiling.

A uvicorn process (`ServerProcess`: the fake embedder, background merges on, started by the
app's lifespan as under `rag serve`) serves a fresh empty index. Eight threads, each with its own
`httpx.Client`, POST 2,000 distinct short documents in all while a sampler polls `GET /healthz`
every 30 ms (`eval.bench.writers.concurrent_writes`, the load the `writers` benchmark phase
runs). Every sample's live `segments` must be at most that sample's `segment_ceiling`; every
POST is acknowledged, every acknowledged document is listed afterwards and a sample of them
reads back with the exact text sent; the index ends with exactly the 2,000; fewer commits were
made than documents written (writes were grouped); and once the writes stop the count settles
at most at the ceiling.

A server without the segment ceiling (`segment_ceiling` missing from `/healthz`) fails the test
at once, saying so, before any load. Out of scope: throughput targets (the `writers` benchmark
phase reports them; timing is not asserted on a shared machine), replacements and deletes.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from eval.bench.bases import empty_index
from eval.bench.synthetic import small_documents
from eval.bench.writers import check_documents, concurrent_writes, generation, settle
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from tests.rag_server_process import ServerProcess

WRITERS = 8
DOCUMENTS = 2_000
SAMPLE_SECONDS = 0.03
WRITE_LIMIT_SECONDS = 120  # bounds the load (no request starts after it); never asserted on
SETTLE_LIMIT_SECONDS = 30  # bounds the wait for the merges after it


def test_concurrent_writers_group_commits_and_stay_under_the_segment_ceiling(tmp_path: Path) -> None:
    documents = small_documents(DOCUMENTS, "cw")
    index_dir = empty_index(tmp_path / "index", HashingEmbedder(), IndexSettings())
    server = ServerProcess(index_dir, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            before = client.get("/healthz").json()
            if "segment_ceiling" not in before:
                pytest.fail(
                    "GET /healthz has no `segment_ceiling` (it answered "
                    f"{sorted(before)}): this server has no segment ceiling (back-pressure on writers "
                    "when merges fall behind), so there is nothing to hold the segment count to"
                )
            load = concurrent_writes(
                server.url,
                documents,
                WRITERS,
                sample_seconds=SAMPLE_SECONDS,
                limit_seconds=WRITE_LIMIT_SECONDS,
            )
            settled = settle(client, SETTLE_LIMIT_SECONDS, quiet_seconds=0.5)
            check = check_documents(client, documents, load.acknowledged)
    finally:
        server.stop()

    assert not load.failures, f"{len(load.failures)} writes not acknowledged, e.g. {load.failures[:3]}"
    assert load.sent == len(load.acknowledged) == DOCUMENTS, (
        f"{load.sent} of {DOCUMENTS} documents sent within {WRITE_LIMIT_SECONDS} s "
        f"({load.seconds:.0f} s of writes), {len(load.acknowledged)} acknowledged"
    )
    assert not check["lost"], f"{len(check['lost'])} acknowledged documents missing: {check['lost'][:5]}"
    assert check["read_back"] > 0 and not check["wrong_text"], f"other text: {check['wrong_text'][:5]}"
    assert check["documents"] == DOCUMENTS
    last_write = max(load.acknowledged.values(), key=generation)
    commits = generation(last_write) - generation(before["index_version"])
    assert commits < DOCUMENTS, f"{commits} commits for {DOCUMENTS} documents: writes were not grouped"
    assert not load.sampler_errors, load.sampler_errors[:3]
    assert len(load.samples) >= 10, "the sampler ran during the writes"
    over = [(s.segments, s.ceiling) for s in load.samples if s.ceiling is None or s.segments > s.ceiling]
    assert not over, f"{len(over)} of {len(load.samples)} samples over the ceiling, e.g. {over[:5]}"
    health = settled.health
    assert settled.settled, (
        f"segments still at {health['segments']} (ceiling {health.get('segment_ceiling')})"
    )
    assert health["segments"] <= health["segment_ceiling"]
    assert health["documents"] == DOCUMENTS
