"""Writes and document reads through the sharded service (`cluster` marker).

One deployment of `test_sharded_serving.deployment` (2 shards, fake embedder) for the module: the
same writes go to it and to the single-process app over one index, and both must then answer
alike. Merges run in each shard writer's merger actor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from index.search.reader import IndexReader
from index.sharding.assignment import shard_of
from index.sharding.layout import ShardedLayout
from service.app import create_app
from service.cluster.local import LocalCluster
from service.config import Settings
from tests.cluster.test_sharded_serving import SHARDS, deployment, same, without_version

pytestmark = pytest.mark.cluster
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

Deployed = tuple[str, TestClient, Settings, ShardedLayout]
QUESTION = "Which port city in the Arctic will the new icebreaker fleet serve?"
NDJSON = {"content-type": "application/x-ndjson"}
FINAL = ("succeeded", "failed", "cancelled")
JOB_DEADLINE_SECONDS = 180.0  # a bound on waiting, never an assertion on time


@pytest.fixture(scope="module")
def deployed(local_cluster: LocalCluster) -> Iterator[Deployed]:
    with (
        deployment(local_cluster, "rag-sharded-writes-test") as (url, single, settings, layout),
        TestClient(create_app(single.settings, engine=single)) as client,
    ):
        yield url, client, settings, layout


def article(number: int, shard: int | None = None, topic: str = "icebreaker fleet") -> dict[str, Any]:
    """A new article whose id lands on `shard` (any shard when None)."""
    while True:
        document_id = f"arctic-{number}"
        if shard is None or shard_of(document_id, SHARDS) == shard:
            break
        number += 1000
    return {
        "id": document_id,
        "title": f"Arctic shipping, part {number}",
        "source": "Polar Wire",
        "text": f"The {topic} will serve the port city of Murmansk from next winter. "
        f"Officials said dispatch {number} covers routes, crews and ice conditions.",
    }


def both(client: TestClient, url: str, method: str, route: str, body: Any = None) -> tuple[Any, Any]:
    expected = client.request(method, route, json=body)
    actual = httpx.request(method, f"{url}{route}", json=body, timeout=120)
    assert expected.status_code == actual.status_code, actual.text
    return expected, actual


def test_document_reads_answer_as_the_single_process_service(deployed: Deployed) -> None:
    url, client, _, layout = deployed
    expected, actual = both(client, url, "GET", "/documents")
    assert actual.status_code == 200
    same(without_version(expected.json()), without_version(actual.json()))
    versions = [IndexReader.open(store).version for store in layout.stores()]
    assert actual.json()["index_version"] == ",".join(versions)
    for summary in expected.json()["documents"]:
        route = f"/documents/{summary['id']}"
        wanted, got = both(client, url, "GET", route)
        same(without_version(wanted.json()), without_version(got.json()), route)
        assert got.json()["index_version"] == ",".join(versions)
    missing, _ = both(client, url, "GET", "/documents/no-such-article")
    assert missing.status_code == 404


def test_writes_reach_their_shard_and_answers_stay_equal(deployed: Deployed) -> None:
    url, client, _, layout = deployed
    new = [article(1, shard=0), article(2, shard=1), article(3, shard=1)]
    for document in new:
        expected, actual = both(client, url, "POST", "/documents", document)
        assert actual.json()["status"] == "added"
        assert actual.json()["documents"] == expected.json()["documents"]
        assert actual.json()["chunks"] == expected.json()["chunks"]
        versions = [IndexReader.open(store).version for store in layout.stores()]
        assert actual.json()["index_version"] == ",".join(versions)  # it holds the write
        owner = shard_of(document["id"], SHARDS)
        assert IndexReader.open(layout.store(owner)).document(document["id"]) is not None
        assert IndexReader.open(layout.store(1 - owner)).document(document["id"]) is None

    _, again = both(client, url, "POST", "/documents", new[0])
    assert again.json()["status"] == "unchanged"
    changed = {**new[1], "text": new[1]["text"] + " Updated with the winter timetable."}
    _, replaced = both(client, url, "POST", "/documents", changed)
    assert replaced.json()["status"] == "replaced"

    for body in ({"query": QUESTION, "k": 5}, {"query": "winter timetable", "k": 3, "mode": "bm25"}):
        expected, actual = both(client, url, "POST", "/search", body)
        same(without_version(expected.json()), without_version(actual.json()), str(body))
        assert {r["document"]["id"] for r in actual.json()["results"]} & {d["id"] for d in new}

    _, removed = both(client, url, "DELETE", f"/documents/{new[2]['id']}")
    assert removed.json()["status"] == "removed"
    gone, _ = both(client, url, "DELETE", f"/documents/{new[2]['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "document_not_found"
    expected, actual = both(client, url, "POST", "/search", {"query": QUESTION, "k": 10})
    same(without_version(expected.json()), without_version(actual.json()))
    assert new[2]["id"] not in {r["document"]["id"] for r in actual.json()["results"]}
    listed, got = both(client, url, "GET", "/documents")
    same(without_version(listed.json()), without_version(got.json()))


def test_the_first_write_to_a_collection_creates_it_on_every_shard_writer(deployed: Deployed) -> None:
    """`POST /collections/arctic/documents` creates the collection's sharded index (the owning
    shard's writer writes its manifest), after which the collection answers as the single-process
    service's does; the default collection and the other named one are untouched."""
    url, client, settings, _ = deployed
    default_before = httpx.get(f"{url}/healthz", timeout=30).json()
    missing, _ = both(client, url, "GET", "/collections/arctic/search?q=icebreaker")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"
    refused, _ = both(client, url, "POST", "/collections/arctic/documents", {"id": "x", "text": ""})
    assert refused.status_code == 422
    assert not (settings.collections_dir / "arctic").exists()  # a refused write creates nothing

    new = [article(11, shard=1), article(12, shard=0, topic="research vessel")]
    _, actual = both(client, url, "POST", "/collections/arctic/documents", new[0])
    assert actual.status_code == 200 and actual.json()["status"] == "added", actual.text
    arctic = ShardedLayout.open(settings.collections_dir / "arctic", SHARDS)
    assert [store.current_pointer() is not None for store in arctic.stores()] == [False, True]
    assert actual.json()["index_version"].startswith("empty,")
    _, second = both(client, url, "POST", "/collections/arctic/documents", new[1])
    assert second.json()["documents"] == 2

    with httpx.Client(base_url=url, timeout=60) as sharded:
        for body in ({"query": QUESTION, "k": 5}, {"query": "research vessel", "k": 2, "mode": "bm25"}):
            wanted = client.post("/collections/arctic/search", json=body)
            got = sharded.post("/collections/arctic/search", json=body)
            assert (wanted.status_code, got.status_code) == (200, 200), got.text
            same(without_version(wanted.json()), without_version(got.json()), str(body))
            assert {r["document"]["id"] for r in got.json()["results"]} <= {d["id"] for d in new}
        default_after = sharded.get("/healthz").json()  # (its merges may still commit meanwhile)
        assert (default_after["documents"], default_after["chunks"]) == (
            default_before["documents"],
            default_before["chunks"],
        )
        names = [c["name"] for c in sharded.get("/collections").json()["collections"]]
        assert names == ["default", "arctic", "wire"]
        assert sharded.post("/collections/arctic/admin/optimize").json()["segments"] == SHARDS
    _, removed = both(client, url, "DELETE", f"/collections/arctic/documents/{new[0]['id']}")
    assert removed.json()["status"] == "removed" and removed.json()["documents"] == 1


def finished(get: Callable[[str], httpx.Response], location: str) -> dict[str, Any]:
    """The job at `location`, read with `get`, once it is final."""
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        job: dict[str, Any] = get(location).json()
        if job["state"] in FINAL:
            return job
        time.sleep(0.2)
    raise AssertionError("the job did not finish")


def test_a_bulk_job_runs_in_the_jobs_deployment_and_ends_as_in_one_process(deployed: Deployed) -> None:
    """`POST /jobs/ingest` on the cluster: the jobs deployment stores the job and commits it batch
    by batch through the shards' writers; it ends as the single-process service's run of the same
    job (refusals included), after which both answer alike. Under a new collection the job
    creates it, and is seen only there."""
    url, client, _, _ = deployed
    documents = [article(40 + n, shard=n % SHARDS, topic="survey ship") for n in range(5)]
    for n, document in enumerate(documents):  # lengths apart: no exact BM25 ties (coordinator.py)
        document["text"] += " The crew logs the pack ice." * (n + 1)
    body = "\n".join([*map(json.dumps, documents), json.dumps({"id": "no-text", "text": ""})]).encode()
    with httpx.Client(base_url=url, timeout=120) as sharded:
        for prefix in ("", "/collections/floes"):
            route = f"{prefix}/jobs/ingest?batch_size=2"
            wanted = client.post(route, content=body, headers=NDJSON)
            got = sharded.post(route, content=body, headers=NDJSON)
            assert (wanted.status_code, got.status_code) == (202, 202), got.text
            expected = finished(client.get, wanted.headers["location"])
            actual = finished(sharded.get, got.headers["location"])
            shared = ("collection", "state", "done", "total", "errors", "errors_total")
            assert {k: actual[k] for k in shared} == {k: expected[k] for k in shared}
            assert (actual["state"], actual["done"], actual["errors_total"]) == ("succeeded", 6, 1)
            assert len(actual["index_version"].split(",")) == SHARDS
            for search in (
                {"query": "survey ship", "k": 5},
                {"query": "Murmansk dispatch 41", "mode": "bm25"},
            ):
                wanted_answer = client.post(f"{prefix}/search", json=search)
                got_answer = sharded.post(f"{prefix}/search", json=search)
                assert got_answer.status_code == 200, got_answer.text
                same(without_version(wanted_answer.json()), without_version(got_answer.json()), str(search))
            listed = sharded.get(f"{prefix}/jobs").json()["jobs"]
            assert [job["id"] for job in listed] == [actual["id"]]
        assert sharded.get(f"/jobs/{actual['id']}").status_code == 404  # the floes job, not default's
        finished_job = sharded.delete(got.headers["location"])
        assert finished_job.status_code == 409 and finished_job.json()["error"]["code"] == "job_finished"


def tracebacks(cluster: LocalCluster) -> str:
    """The tracebacks in the cluster's logs, for an assertion's message."""
    found = []
    for path in sorted(Path(cluster.temp_dir).glob("session_latest/logs/**/*")):
        if path.is_file() and path.suffix in {".log", ".err", ".out"}:
            text = path.read_text(errors="replace")
            found += [f"{path.name}: {text[i : i + 3000]}" for i in _starts(text, "Traceback")]
    return "\n".join(found[-5:])


def merge_tasks(cluster: LocalCluster) -> str:
    """The mergers' processes, each node's free CPUs and the cluster logs' tracebacks, for an
    assertion's message."""
    return f"mergers: {mergers()}\nfree: {ray.available_resources()}\n{tracebacks(cluster)}"


def mergers() -> set[int]:
    """The pids of the processes running a writer's merger (Ray titles them `ray::ShardMerger`)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:  # not a process, or it ended
            continue
        if title.startswith(b"ray::ShardMerger"):
            found.add(int(entry.name))
    return found


def _starts(text: str, word: str) -> list[int]:
    starts, at = [], text.find(word)
    while at >= 0:
        starts.append(at)
        at = text.find(word, at + 1)
    return starts


def test_a_shards_merges_run_in_one_kept_process_off_the_query_replicas(
    deployed: Deployed, local_cluster: LocalCluster
) -> None:
    from service.sharded.deployments import APP_NAME

    url, _, _, layout = deployed
    writer = serve.get_deployment_handle("writer-0", app_name=APP_NAME)
    written = 0
    seen: list[set[int]] = []
    with httpx.Client(base_url=url, timeout=120) as service:
        for batch in range(2):
            before = writer.merges_committed.remote().result(timeout_s=30)
            for number in range(100 + 30 * batch, 130 + 30 * batch):
                response = service.post("/documents", json=article(number, shard=0, topic="dispatch"))
                assert response.status_code == 200, f"{response.text}\n{tracebacks(local_cluster)}"
                written += 1
            deadline = time.monotonic() + 60
            while (
                writer.merges_committed.remote().result(timeout_s=30) == before
                and time.monotonic() < deadline
            ):
                time.sleep(0.5)
            assert writer.merges_committed.remote().result(timeout_s=30) > before, merge_tasks(local_cluster)
            seen.append(mergers())
    # Merges in both batches, by the same processes: a writer's merger is kept, not started per
    # merge (the replicas and writers are titled by Serve, so none of them is a merger).
    assert seen[0] and seen[0] == seen[1], merge_tasks(local_cluster)
    segments = len(IndexReader.open(layout.store(0)).segments)
    assert segments < written  # one segment per write, merged down
    health = httpx.get(f"{url}/healthz", timeout=30).json()
    assert health["documents"] == len(httpx.get(f"{url}/documents", timeout=60).json()["documents"])


def test_optimize_merges_every_shard_into_one_segment_and_answers_stay_the_same(deployed: Deployed) -> None:
    """After the writes above (shard 0 holds several segments), `POST /admin/optimize` has each
    shard's writer merge its shard; the answers do not change, only the version."""
    url, _, _, layout = deployed
    body = {"query": QUESTION, "k": 5}
    with httpx.Client(base_url=url, timeout=300) as service:
        before = service.post("/search", json=body).json()
        health = service.get("/healthz").json()
        assert health["segments"] > SHARDS
        response = service.post("/admin/optimize")
        assert response.status_code == 200, response.text
        optimized = response.json()
        after = service.post("/search", json=body).json()
        health_after = service.get("/healthz").json()
    versions = [IndexReader.open(store).version for store in layout.stores()]
    assert optimized["index_version"] == ",".join(versions) == health_after["index_version"]
    assert [len(IndexReader.open(store).segments) for store in layout.stores()] == [1] * SHARDS
    assert optimized["segments"] == SHARDS == health_after["segments"]
    assert optimized["merged"] > 0
    assert (health_after["documents"], health_after["chunks"]) == (health["documents"], health["chunks"])
    assert after["index_version"] != before["index_version"]
    # The same scores (rows renumbered by the merge may order exact ties otherwise).
    scores = [result["score"] for result in before["results"]]
    assert [result["score"] for result in after["results"]] == pytest.approx(scores, abs=1e-6)
    assert after["results"][0]["document"]["id"] == before["results"][0]["document"]["id"]


def test_a_snapshot_of_every_shard_is_kept_and_restored_by_the_writers(deployed: Deployed) -> None:
    """`/admin/snapshots` through each shard's writer deployment: a snapshot names every shard's
    commit; after more writes, restoring it brings back its documents and answers. Then
    `/admin/recover` finds every shard intact."""
    url, _, _, layout = deployed
    body = {"query": QUESTION, "k": 5}
    with httpx.Client(base_url=url, timeout=300) as service:
        before = service.get("/healthz").json()
        answers = service.post("/search", json=body).json()["results"]
        made = service.post("/admin/snapshots", json={"name": "on-cluster"})
        assert made.status_code == 201, made.text
        assert (made.json()["index_version"], made.json()["documents"]) == (
            before["index_version"],
            before["documents"],
        )
        assert all((store.snapshots_dir / "on-cluster").is_dir() for store in layout.stores())
        for number in (21, 22):
            assert service.post("/documents", json=article(number)).status_code == 200
        assert service.get("/healthz").json()["documents"] == before["documents"] + 2
        listed = service.get("/admin/snapshots").json()
        assert listed == {"snapshots": [made.json()], "damaged": []}
        restored = service.post("/admin/snapshots/on-cluster/restore")
        assert restored.status_code == 200, restored.text
        after = service.get("/healthz").json()
        assert restored.json()["index_version"] == after["index_version"]
        assert after["documents"] == before["documents"]
        results = service.post("/search", json=body).json()["results"]
        intact = service.post("/admin/recover")  # every shard's writer checks its live commit
        assert intact.status_code == 200, intact.text
        assert (intact.json()["recovered"], intact.json()["index_version"]) == (False, after["index_version"])
        assert intact.json()["source"].startswith("shard-0/commits/")
    assert [r["document"]["id"] for r in results] == [r["document"]["id"] for r in answers]
    assert [r["score"] for r in results] == pytest.approx([r["score"] for r in answers], abs=1e-6)
