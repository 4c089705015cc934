"""Bulk ingest jobs over shards, without Ray (tests/sharded_in_process.py): the jobs deployment
(`service.sharded.jobs.JobsDeployment`) runs the job through the sharded engine's writers and the
app reaches it through `RemoteJobs`; the same job sent to the single-process app over one index
must end the same, and both must then answer alike. On a real cluster:
tests/cluster/test_sharded_writes.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import load_corpus
from index.embedding import HashingEmbedder
from service.app import create_app
from service.config import EmbedderKind, Settings
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, make_settings

pytest.importorskip("ray")
from index.sharding.assignment import shard_of
from service.sharded.deployments import MAX_MESSAGE_BYTES
from service.sharded.failures import FailureKinds
from service.sharded.jobs import MESSAGE_OVERHEAD_BYTES, RemoteJobs
from tests.cluster.test_sharded_serving import same, without_version
from tests.sharded_in_process import in_process_engine, in_process_jobs
from tests.test_sharded_collections import SHARDS, sharded_index

POLL_LIMIT_SECONDS = 60  # a bound on waiting, never an assertion on time
NDJSON = {"content-type": "application/x-ndjson"}
FINAL = ("succeeded", "failed", "cancelled")


def job_body(prefix: str, count: int) -> bytes:
    """`count` articles on both shards, then one that `POST /documents` refuses (no text)."""
    lines = [
        json.dumps(
            {
                "id": f"{prefix}-{n}",
                "title": f"Survey ship {n}",
                "source": "Polar Wire",
                "text": f"The survey ship {n} maps the sea floor off Svalbard. Dispatch {n} lists its crew."
                + " The crew logs the pack ice." * (n + 1),  # lengths apart: no exact BM25 ties
            }
        )
        for n in range(count)
    ]
    return "\n".join([*lines, json.dumps({"id": f"{prefix}-empty", "text": ""})]).encode()


def finished(client: TestClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(location).json()
        if job["state"] in FINAL:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{location} did not finish")


def comparable(job: dict[str, Any]) -> dict[str, Any]:
    """What two servers' runs of one job share (not its id, times or versions)."""
    return {key: job[key] for key in ("collection", "state", "done", "total", "errors", "errors_total")}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """(a client of the sharded app, its jobs run by an in-process jobs deployment; a client of
    the single-process app): both over the bundled corpus."""
    common: dict[str, Any] = {"embedder": EmbedderKind.HASHING}
    single = Engine.from_settings(
        make_settings(tmp_path / "single" / "index", **common), embedder=HashingEmbedder()
    )
    single.sync(load_corpus([BUNDLED_CORPUS]))
    settings = make_settings(tmp_path / "sharded" / "index", shards=SHARDS, **common)
    sharded_index(settings.index_dir, load_corpus([BUNDLED_CORPUS]), settings)
    engine = in_process_engine(settings, SHARDS)
    deployment, jobs = in_process_jobs(settings, engine)
    try:
        with (
            TestClient(create_app(settings, engine=engine, job_service=jobs)) as sharded,
            TestClient(create_app(single.settings, engine=single)) as reference,
        ):
            yield sharded, reference
    finally:
        deployment.service.stop()


def test_a_job_over_shards_ends_as_in_one_process_and_both_answer_alike(
    served: tuple[TestClient, TestClient],
) -> None:
    sharded, reference = served
    body = job_body("survey", 5)
    assert {shard_of(f"survey-{n}", SHARDS) for n in range(5)} == set(range(SHARDS))
    submitted = [client.post("/jobs/ingest?batch_size=2", content=body, headers=NDJSON) for client in served]
    assert [answer.status_code for answer in submitted] == [202, 202], submitted[0].text
    assert submitted[0].json()["state"] == "queued" and submitted[0].json()["total"] == 6
    got = finished(sharded, submitted[0].headers["location"])
    wanted = finished(reference, submitted[1].headers["location"])
    assert comparable(got) == comparable(wanted)
    assert got["state"] == "succeeded" and (got["done"], got["errors_total"]) == (6, 1)
    assert got["errors"][0]["line"] == 6 and got["errors"][0]["id"] == "survey-empty"
    assert got["index_version"] == sharded.get("/healthz").json()["index_version"]

    for search in ({"query": "survey ship sea floor", "k": 5}, {"query": "Svalbard crew", "mode": "bm25"}):
        expected, actual = reference.post("/search", json=search), sharded.post("/search", json=search)
        same(without_version(expected.json()), without_version(actual.json()), str(search))
        assert {r["document"]["id"] for r in actual.json()["results"]} & {f"survey-{n}" for n in range(5)}
    expected, actual = reference.get("/documents"), sharded.get("/documents")
    same(without_version(expected.json()), without_version(actual.json()), "documents")
    assert [job["id"] for job in sharded.get("/jobs").json()["jobs"]] == [got["id"]]

    again = sharded.delete(submitted[0].headers["location"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    missing = sharded.get("/jobs/job-0000000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"


def test_a_job_under_a_collection_creates_it_and_is_seen_only_there(
    served: tuple[TestClient, TestClient],
) -> None:
    sharded, reference = served
    body = job_body("floe", 3)
    submitted = [
        client.post("/collections/floes/jobs/ingest", content=body, headers=NDJSON) for client in served
    ]
    got = finished(sharded, submitted[0].headers["location"])
    wanted = finished(reference, submitted[1].headers["location"])
    assert comparable(got) == comparable(wanted) and got["collection"] == "floes"
    search = {"query": "survey ship", "k": 3}
    expected = reference.post("/collections/floes/search", json=search)
    actual = sharded.post("/collections/floes/search", json=search)
    same(without_version(expected.json()), without_version(actual.json()), "floes")
    assert [c["name"] for c in sharded.get("/collections").json()["collections"]] == ["default", "floes"]
    assert sharded.get(f"/jobs/{got['id']}").status_code == 404
    assert sharded.get("/jobs").json()["jobs"] == []
    assert [job["id"] for job in sharded.get("/collections/floes/jobs").json()["jobs"]] == [got["id"]]


def test_a_job_that_commits_nothing_names_the_live_version(served: tuple[TestClient, TestClient]) -> None:
    sharded, _ = served
    body = json.dumps({"id": "no-text", "text": ""}).encode()
    submitted = sharded.post("/jobs/ingest", content=body, headers=NDJSON)
    job = finished(sharded, submitted.headers["location"])
    assert (job["state"], job["done"], job["errors_total"]) == ("succeeded", 1, 1)
    assert job["index_version"] == sharded.get("/healthz").json()["index_version"]


def test_the_stores_refusal_crosses_back_as_its_own_error(
    served: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    sharded, _ = served
    monkeypatch.setattr("service.jobs.store.MAX_UNFINISHED", 0)
    refused = sharded.post("/jobs/ingest", content=job_body("full", 1), headers=NDJSON)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "too_many_jobs"
    assert sharded.get("/jobs").json()["jobs"] == []


def test_a_job_too_large_for_one_message_between_deployments_is_a_413_storing_nothing(
    served: tuple[TestClient, TestClient],
) -> None:
    sharded, _ = served
    jobs = sharded.app.state.jobs  # type: ignore[attr-defined]
    body = job_body("big", 3)
    jobs.max_input_bytes = len(body) - 1
    refused = sharded.post("/jobs/ingest", content=body, headers=NDJSON)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "job_too_large"
    assert f"{len(body)} bytes" in refused.json()["error"]["message"]
    assert sharded.get("/jobs").json()["jobs"] == []
    jobs.max_input_bytes = len(body)
    assert sharded.post("/jobs/ingest", content=body, headers=NDJSON).status_code == 202


def test_one_message_between_deployments_holds_the_largest_job_as_stored() -> None:
    """Files are stored base64: 4 bytes for every 3 sent."""
    largest_body = Settings.model_fields["max_job_bytes"].default
    assert largest_body * 4 // 3 + 4 < MAX_MESSAGE_BYTES - MESSAGE_OVERHEAD_BYTES


class Unreachable(Exception):
    """What the stand-in handle's deployment raises: no replica to route to."""


class DownHandle:
    """A jobs deployment with no replica (`down`), or one that never answers (`slow`)."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __getattr__(self, name: str) -> Any:
        how = self.how

        class Remote:
            @staticmethod
            async def remote(*args: Any) -> Any:
                if how == "down":
                    raise Unreachable
                await asyncio.sleep(60)

        return Remote


@pytest.mark.parametrize("how", ["down", "slow"])
def test_a_jobs_deployment_that_does_not_answer_is_a_503(tmp_path: Path, how: str) -> None:
    settings = make_settings(tmp_path / "index", shards=SHARDS, embedder=EmbedderKind.HASHING)
    sharded_index(settings.index_dir, load_corpus([BUNDLED_CORPUS]), settings)
    kinds = FailureKinds(shard_down=(Unreachable,))
    jobs = RemoteJobs(DownHandle(how), kinds, MAX_MESSAGE_BYTES, timeout_s=0.2)
    app = create_app(settings, engine=in_process_engine(settings, SHARDS), job_service=jobs)
    with TestClient(app) as client:
        for answer in (
            client.post("/jobs/ingest", content=job_body("lost", 1), headers=NDJSON),
            client.get("/jobs"),
            client.get("/jobs/job-0000000000000000"),
            client.delete("/jobs/job-0000000000000000"),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "jobs_unavailable"
            assert "list the jobs" in answer.json()["error"]["message"]
