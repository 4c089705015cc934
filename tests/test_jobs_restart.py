"""A bulk ingest job survives a kill -9 of a real server process (service/jobs/runner.py).

The server is started on an index, given a job of a thousand documents in small batches,
and killed with SIGKILL once the job reports progress. Restarted on the same index directory,
it still holds every document the job had committed, lists the job, and finishes it (the job's
fate: resumed, `succeeded` with every document in)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from eval.bench.bases import empty_index
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from tests.rag_server_process import ServerProcess

DOCUMENTS = 1_000
POLL_LIMIT_SECONDS = 180  # bounds the waits; never asserted on


def poll(client: httpx.Client, job_id: str, until: str) -> dict[str, object]:
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/jobs/{job_id}").json()
        if (until == "progress" and int(str(job["done"])) > 0) or (
            until == "final" and job["state"] in ("succeeded", "failed", "cancelled")
        ):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {until} within the limit")


def test_a_job_interrupted_by_kill_9_keeps_its_commits_and_finishes_after_a_restart(tmp_path: Path) -> None:
    index_dir = empty_index(tmp_path / "index", HashingEmbedder(), IndexSettings())
    body = "\n".join(
        json.dumps({"id": f"k-{i}", "title": f"Quay {i}", "text": f"Report {i} from the quay, with figures."})
        for i in range(DOCUMENTS)
    )
    server = ServerProcess(index_dir, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            accepted = client.post(
                "/jobs/ingest?batch_size=20", content=body, headers={"content-type": "application/x-ndjson"}
            )
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["id"]
            progress = poll(client, job_id, "progress")
        server.kill()  # SIGKILL by the server's own pid: no clean-up code runs
    finally:
        server.stop()
    assert int(str(progress["done"])) < DOCUMENTS, "the job ended before the kill: make it larger"
    restarted = ServerProcess(index_dir, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as client:
            listed = client.get("/jobs").json()["jobs"]
            assert [job["id"] for job in listed] == [job_id]
            assert listed[0]["done"] >= int(str(progress["done"]))  # never goes back
            present = {d["id"] for d in client.get("/documents").json()["documents"]}
            assert {f"k-{i}" for i in range(int(str(progress["done"])))} <= present
            final = poll(client, job_id, "final")
            assert final["state"] == "succeeded" and final["done"] == DOCUMENTS and final["errors"] == []
            present = {d["id"] for d in client.get("/documents").json()["documents"]}
            assert present == {f"k-{i}" for i in range(DOCUMENTS)}
    finally:
        restarted.stop()
