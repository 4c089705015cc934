"""Bulk ingest jobs in process (service/jobs/): progress, per-document errors, cancel, restarts of
the runner, refused bodies, keys, collections; the on-disk record format, property-tested.

The kill -9 of a real server mid-job is tests/test_jobs_restart.py."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from corpus import Document
from eval.bench.bases import empty_index
from index.embedding import HashingEmbedder
from index.errors import IndexCorruptError
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.changes import WriteResult
from service.app import create_app
from service.config import Settings
from service.engine import Engine
from service.jobs.records import JobError, JobRecord, record_bytes, record_from_bytes
from service.jobs.store import INPUT, RECORD, JobStore, jobs_dir
from tests.conftest import make_settings

POLL_LIMIT_SECONDS = 60  # a bound on waiting, never an assertion on time
NDJSON = {"content-type": "application/x-ndjson"}


class GatedEngine(Engine):
    """An engine whose every batch commit waits for a permit: a test decides when batches run."""

    permits: threading.Semaphore

    def upsert(self, documents: Sequence[Document]) -> WriteResult:
        self.permits.acquire()
        return super().upsert(documents)


def lines_of(count: int, prefix: str = "job") -> list[str]:
    return [
        json.dumps(
            {"id": f"{prefix}-{i}", "title": f"Harbour {i}", "text": f"Dispatch {i} on the harbour works."}
        )
        for i in range(count)
    ]


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    settings = make_settings(tmp_path / "index", **overrides)
    empty_index(settings.index_dir, HashingEmbedder(), IndexSettings())
    return settings


@pytest.fixture
def jobs_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path)
    engine = Engine(settings, HashingEmbedder(), IndexStore(settings.index_dir))
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client


def wait_for(client: TestClient, url: str, final: bool = True, done: int = 0) -> list[dict[str, Any]]:
    """Poll a job until it is final (or has `done` >= `done`); every answer seen, in order."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        job = client.get(url).json()
        seen.append(job)
        if (final and job["state"] in ("succeeded", "failed", "cancelled")) or (
            not final and job["done"] >= done
        ):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job not there within the limit: {seen[-1]}")


def document_ids(client: TestClient, prefix: str = "") -> set[str]:
    return {d["id"] for d in client.get(f"{prefix}/documents").json()["documents"]}


def test_a_job_completes_with_rising_progress_and_lists_refused_documents(jobs_client: TestClient) -> None:
    lines = lines_of(300)
    lines[4] = json.dumps({"id": "empty-text", "text": ""})
    lines[9] = "{not json"
    lines[20] = json.dumps({"id": "bad-date", "text": "Some text.", "published": "03/04/2025"})
    body = "\n".join(lines[:150]) + "\n\n" + "\n".join(lines[150:])  # a blank line: skipped, counted
    accepted = jobs_client.post("/jobs/ingest?batch_size=20", content=body, headers=NDJSON)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    assert accepted.headers["location"] == f"/jobs/{job_id}"
    seen = wait_for(jobs_client, f"/jobs/{job_id}")
    done = [job["done"] for job in seen]
    assert done == sorted(done), done
    final = seen[-1]
    assert final["state"] == "succeeded" and final["done"] == final["total"] == 300
    assert [(e["line"], e["id"]) for e in final["errors"]] == [
        (5, "empty-text"),
        (10, None),
        (21, "bad-date"),
    ]
    assert "text" in final["errors"][0]["reason"] and "03/04/2025" in final["errors"][2]["reason"]
    assert final["errors_total"] == 3 and final["index_version"]
    assert document_ids(jobs_client) == {f"job-{i}" for i in range(300)} - {"job-4", "job-9", "job-20"}
    assert jobs_client.get("/healthz").json()["index_version"] == final["index_version"]
    assert [job["id"] for job in jobs_client.get("/jobs").json()["jobs"]] == [job_id]
    assert jobs_client.delete(f"/jobs/{job_id}").status_code == 409


def test_a_json_list_and_uploaded_files_are_jobs_too_with_the_rules_of_post_documents(
    jobs_client: TestClient,
) -> None:
    listed = jobs_client.post(
        "/jobs/ingest", json=[{"title": "No id", "text": "Derived id."}, {"id": "x", "text": "Y", "extra": 1}]
    )
    assert listed.status_code == 202
    final = wait_for(jobs_client, f"/jobs/{listed.json()['id']}")[-1]
    assert final["state"] == "succeeded" and final["errors"][0]["line"] == 2
    assert "extra" in final["errors"][0]["reason"]
    files = [
        ("file", ("one.md", b"---\ntitle: One\n---\nThe first article.")),
        ("file", ("two.bin", b"\x00\x01")),
        ("file", ("three.txt", b"Three\nThe third article.")),
    ]
    uploaded = jobs_client.post("/jobs/ingest", files=files)
    assert uploaded.status_code == 202
    final = wait_for(jobs_client, f"/jobs/{uploaded.json()['id']}")[-1]
    assert final["state"] == "succeeded" and [(e["line"], e["id"]) for e in final["errors"]] == [
        (2, "two.bin")
    ]
    assert {"one", "three"} <= document_ids(jobs_client)


def test_cancel_keeps_what_was_committed_and_applies_nothing_more(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    engine = GatedEngine(settings, HashingEmbedder(), IndexStore(settings.index_dir))
    engine.permits = threading.Semaphore(2)
    with TestClient(create_app(settings, engine=engine)) as client:
        job_id = client.post(
            "/jobs/ingest?batch_size=10", content="\n".join(lines_of(100)), headers=NDJSON
        ).json()["id"]
        wait_for(client, f"/jobs/{job_id}", final=False, done=20)
        cancelling = client.delete(f"/jobs/{job_id}")
        assert cancelling.status_code == 202 and cancelling.json()["cancel_requested"]
        for _ in range(10):
            engine.permits.release()
        final = wait_for(client, f"/jobs/{job_id}")[-1]
        assert final["state"] == "cancelled" and 20 <= final["done"] < 100, final
        assert document_ids(client) == {f"job-{i}" for i in range(final["done"])}
        queued = client.post("/jobs/ingest", json=[{"id": "late", "text": "Never."}]).json()["id"]
        assert client.get(f"/jobs/{queued}").json()["state"] in ("queued", "running", "succeeded")


def test_a_queued_job_is_cancelled_at_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    engine = GatedEngine(settings, HashingEmbedder(), IndexStore(settings.index_dir))
    engine.permits = threading.Semaphore(0)
    with TestClient(create_app(settings, engine=engine)) as client:
        first = client.post("/jobs/ingest", json=[{"id": "first", "text": "Blocked."}]).json()["id"]
        second = client.post("/jobs/ingest", json=[{"id": "second", "text": "Queued."}]).json()["id"]
        cancelled = client.delete(f"/jobs/{second}").json()
        assert cancelled["state"] == "cancelled" and cancelled["done"] == 0
        engine.permits.release(5)
        assert wait_for(client, f"/jobs/{first}")[-1]["state"] == "succeeded"
        assert "second" not in document_ids(client)
        assert not (jobs_dir(settings) / second / INPUT).exists()


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"id,text\n1,a", {"content-type": "text/csv"}, 415, "unsupported_media_type"),
        (b"[1,", {"content-type": "application/json"}, 400, "malformed_json"),
        (b'{"id": "a", "text": "b"}', {"content-type": "application/json"}, 422, "not_a_list"),
        (b"[]", {"content-type": "application/json"}, 422, "empty_job"),
        (b"\n \n", NDJSON, 422, "empty_job"),
    ],
)
def test_a_bad_body_is_a_4xx_and_stores_nothing(
    jobs_client: TestClient, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    refused = jobs_client.post("/jobs/ingest", content=body, headers=headers)
    assert refused.status_code == status and refused.json()["error"]["code"] == code
    assert jobs_client.get("/jobs").json() == {"jobs": []}


def test_unknown_jobs_bad_batch_sizes_and_other_collections(jobs_client: TestClient) -> None:
    assert jobs_client.get("/jobs/job-0123456789abcdef").json()["error"]["code"] == "job_not_found"
    assert jobs_client.delete("/jobs/job-0123456789abcdef").status_code == 404
    assert jobs_client.get("/jobs/not-a-job-id").status_code == 422
    assert jobs_client.post("/jobs/ingest?batch_size=0", json=[{"text": "a"}]).status_code == 422
    job_id = jobs_client.post("/collections/news/jobs/ingest", json=[{"id": "n1", "text": "News."}]).json()[
        "id"
    ]
    assert wait_for(jobs_client, f"/collections/news/jobs/{job_id}")[-1]["state"] == "succeeded"
    assert document_ids(jobs_client, "/collections/news") == {"n1"}
    assert jobs_client.get(f"/jobs/{job_id}").status_code == 404  # not the default collection's
    assert jobs_client.get("/jobs").json() == {"jobs": []}


def test_jobs_need_an_admin_key_as_writes_do(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys=["reader"], admin_keys=["admin"])
    engine = Engine(settings, HashingEmbedder(), IndexStore(settings.index_dir))
    with TestClient(create_app(settings, engine=engine)) as client:
        body = [{"id": "k", "text": "Keyed."}]
        assert client.post("/jobs/ingest", json=body).status_code == 401
        assert client.post("/jobs/ingest", json=body, headers={"X-API-Key": "reader"}).status_code == 403
        accepted = client.post("/jobs/ingest", json=body, headers={"X-API-Key": "admin"})
        assert accepted.status_code == 202
        assert client.get("/jobs", headers={"X-API-Key": "reader"}).status_code == 200
        assert client.get("/jobs").status_code == 401


def test_the_runner_resumes_an_unfinished_job_and_fails_one_without_input(tmp_path: Path) -> None:
    """As a restart finds them: one job half done (its first batch committed, the second
    committed too but not yet counted), one whose input is gone, one never acknowledged."""
    settings = settings_for(tmp_path)
    engine = Engine(settings, HashingEmbedder(), IndexStore(settings.index_dir))
    lines = lines_of(30)
    engine.upsert(
        [
            Document(id=f"job-{i}", title=f"Harbour {i}", text=f"Dispatch {i} on the harbour works.")
            for i in range(20)
        ]
    )
    root = jobs_dir(settings)
    now = time.time()
    half = JobRecord(
        "job-00000000000000aa", "default", "documents", 30, 10, now, now, state="running", done=10
    )
    lost = JobRecord("job-00000000000000bb", "default", "documents", 5, 10, now + 1, now + 1)
    for record, data in ((half, "\n".join(lines).encode()), (lost, None)):
        (root / record.id).mkdir(parents=True)
        (root / record.id / RECORD).write_bytes(record_bytes(record))
        if data is not None:
            (root / record.id / INPUT).write_bytes(data)
    (root / "job-00000000000000cc").mkdir()
    (root / "job-00000000000000cc" / INPUT).write_bytes(b"{}")
    with TestClient(create_app(settings, engine=engine)) as client:
        resumed = wait_for(client, f"/jobs/{half.id}")[-1]
        assert resumed["state"] == "succeeded" and resumed["done"] == 30 and not resumed["errors"]
        assert document_ids(client) == {f"job-{i}" for i in range(30)}
        failed = wait_for(client, f"/jobs/{lost.id}")[-1]
        assert failed["state"] == "failed" and "input is missing" in failed["reason"]
        assert client.get("/jobs/job-00000000000000cc").status_code == 404
    assert not (root / "job-00000000000000cc").exists()


def test_only_the_newest_finished_records_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.jobs.store.KEPT_FINISHED", 2)
    store = JobStore(tmp_path / "jobs")
    now = time.time()
    for number in range(4):
        record = JobRecord(f"job-{number:016x}", "default", "documents", 1, 1, now + number, now + number)
        (store.root / record.id).mkdir(parents=True)
        record.state = "succeeded"
        (store.root / record.id / RECORD).write_bytes(record_bytes(record))
    assert store.load() == []
    assert sorted(p.name for p in store.root.iterdir()) == [f"job-{2:016x}", f"job-{3:016x}"]


texts = st.text()
records = st.builds(
    JobRecord,
    id=texts,
    collection=texts,
    kind=st.sampled_from(["documents", "files"]),
    total=st.integers(0, 10**9),
    batch_size=st.integers(1, 5000),
    created=st.floats(0, 4e9),
    updated=st.floats(0, 4e9),
    state=st.sampled_from(["queued", "running", "succeeded", "failed", "cancelled"]),
    done=st.integers(0, 10**9),
    errors=st.lists(st.builds(JobError, st.integers(1, 10**9), st.none() | texts, texts), max_size=5),
    errors_total=st.integers(0, 10**9),
    index_version=st.none() | texts,
    reason=st.none() | texts,
    cancel_requested=st.booleans(),
)


@given(records)
def test_a_job_record_reads_back_as_written(record: JobRecord) -> None:
    assert record_from_bytes(record_bytes(record), Path("job.json")) == record


@given(records, st.data())
def test_a_damaged_job_record_is_caught(record: JobRecord, data: st.DataObject) -> None:
    written = bytearray(record_bytes(record))
    position = data.draw(st.integers(0, len(written) - 1))
    flipped = data.draw(st.integers(1, 255))
    written[position] ^= flipped
    with contextlib.suppress(IndexCorruptError):
        assert record_from_bytes(bytes(written), Path("job.json")) == record  # whitespace may differ
