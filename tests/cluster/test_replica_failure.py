"""Replicas and failure of the sharded service on Ray Serve (`cluster` marker, issue 22).

Its own Serve deployment on the session's real local Ray cluster (2 shards x 2 replicas, the fake
embedder, `RAG_SHARD_TIMEOUT_SECONDS` 3), over the same documents as `test_sharded_serving`, whose
single-process app is the reference. Replica processes are found through Ray: Serve's replica actors by
name, each asked for its pid and node and signalled by a task pinned to that node: each node is its own
PID namespace, so only a process there may use the pid Ray reports. The task checks that the
process's title is the replica's before it signals.

* a replica killed (SIGKILL) under load: every query answers 200, as the reference; Serve starts
  a new replica. (Serve's router asks a replica for a slot before sending it a call, so a dead or
  stopped one rarely receives calls: the ingress's retry of a call lost in flight is tested with
  fakes in tests/test_sharded_failures.py);
* a shard whose replicas are all stopped (SIGSTOP, so none can answer; SIGCONT afterwards):
  503 `shard_unavailable` naming that shard, for `/search` and `/healthz`, never fewer results;
* the jobs deployment's replica killed (SIGKILL) mid-job: 503 `jobs_unavailable` meanwhile, then
  the job resumed by the replica Serve starts in its place, to its end.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.cluster.local import LocalCluster
from tests.cluster.test_sharded_serving import QUESTIONS, deployment, same, without_version

pytestmark = pytest.mark.cluster
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

REPLICAS = 2
RESTORE_DEADLINE_SECONDS = 180.0
LOAD_THREADS = 3
JOB_DOCUMENTS = 60
BODIES = [{"query": question, "k": 3, "mode": mode} for question in QUESTIONS for mode in ("hybrid", "bm25")]


@pytest.fixture(scope="module")
def deployed(local_cluster: LocalCluster) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(the sharded service's URL, the reference answer to each of BODIES)."""
    with deployment(
        local_cluster, "rag-replica-failure-test", shard_replicas=REPLICAS, shard_timeout_seconds=3.0
    ) as (url, single, _, _):
        with TestClient(create_app(single.settings, engine=single)) as client:
            expected = []
            for body in BODIES:
                response = client.post("/search", json=body)
                assert response.status_code == 200, response.text
                expected.append(without_version(response.json()))
        yield url, expected


@dataclass(frozen=True)
class Replica:
    name: str  # the replica actor's name in Serve's namespace
    title: str  # what Ray titles its process
    pid: int  # in its node's PID namespace
    node_id: str


def _where() -> tuple[int, str]:
    return os.getpid(), ray.get_runtime_context().get_node_id()


def replicas(deployment_name: str) -> list[Replica]:
    """The live replicas of deployment `deployment_name`: Serve's replica actors, as Ray's GCS
    names them, each asked for its pid and node (`__ray_call__` runs a function in the actor's
    process)."""
    prefix = f"SERVE_REPLICA::rag#{deployment_name}#"
    names = [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == "serve" and actor["name"].startswith(prefix)
    ]
    found = []
    for name in sorted(names):
        handle = ray.get_actor(name, namespace="serve")
        pid, node_id = ray.get(handle.__ray_call__.remote(lambda _: _where()), timeout=60)
        found.append(Replica(name, f"ServeReplica:rag:{deployment_name}", pid, node_id))
    return found


@ray.remote(num_cpus=0)
def _signal_on_this_node(pid: int, title: str, number: int) -> None:
    """Runs on the replica's node, in its PID namespace: signals `pid` once its title is `title`'s."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if title not in cmdline:
        raise RuntimeError(f"pid {pid} is {cmdline!r}, not {title}")
    os.kill(pid, number)


def signal_replica(replica: Replica, number: int) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    pinned = NodeAffinitySchedulingStrategy(node_id=replica.node_id, soft=False)
    signalled = _signal_on_this_node.options(scheduling_strategy=pinned)
    ray.get(signalled.remote(replica.pid, replica.title, number), timeout=60)


def running_replicas(deployment_name: str) -> int:
    status = serve.status().applications["rag"].deployments[deployment_name]
    return int(status.replica_states.get("RUNNING", 0))


def test_a_replica_killed_under_load_loses_no_query_and_comes_back(
    deployed: tuple[str, list[dict[str, Any]]],
) -> None:
    url, expected = deployed
    before = replicas("shard-1")
    assert len(before) == REPLICAS and running_replicas("shard-1") == REPLICAS
    stop, killed = threading.Event(), threading.Event()
    answered: list[tuple[int, int, dict[str, Any], bool]] = []  # (body, status, json, after the kill)
    lock = threading.Lock()

    def load(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            sent = offset
            while not stop.is_set():
                index = sent % len(BODIES)
                after_kill = killed.is_set()
                response = client.post("/search", json=BODIES[index])
                with lock:
                    answered.append((index, response.status_code, response.json(), after_kill))
                sent += 1

    threads = [threading.Thread(target=load, args=(offset,)) for offset in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)  # load running before the kill
        signal_replica(before[0], signal.SIGKILL)
        killed.set()
        time.sleep(2.0)  # and after it
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert sum(1 for *_, after in answered if after) > 0
    for index, status, body, _ in answered:
        assert status == 200, body
        same(expected[index], without_version(body), f"{BODIES[index]}")

    deadline = time.monotonic() + RESTORE_DEADLINE_SECONDS  # generous: how long is not the point
    while time.monotonic() < deadline:
        names = {replica.name for replica in replicas("shard-1")}
        if len(names) == REPLICAS and before[0].name not in names and running_replicas("shard-1") == REPLICAS:
            break
        time.sleep(1.0)
    now = replicas("shard-1")
    assert before[0].name not in {replica.name for replica in now}
    assert len(now) == REPLICAS and running_replicas("shard-1") == REPLICAS
    response = httpx.post(f"{url}/search", json=BODIES[0], timeout=60)
    assert response.status_code == 200, response.text
    same(expected[0], without_version(response.json()))


def test_a_shard_with_no_replica_answering_is_a_503_naming_it(
    deployed: tuple[str, list[dict[str, Any]]],
) -> None:
    url, expected = deployed
    stopped = replicas("shard-0")
    assert len(stopped) == REPLICAS
    try:
        for actor in stopped:
            signal_replica(actor, signal.SIGSTOP)
        for route, call in (
            ("/search", lambda: httpx.post(f"{url}/search", json=BODIES[0], timeout=60)),
            ("/healthz", lambda: httpx.get(f"{url}/healthz", timeout=60)),
        ):
            response = call()
            assert response.status_code == 503, (route, response.text)
            error = response.json()["error"]
            assert error["code"] == "shard_unavailable", route
            assert "shard-0" in error["message"] and "shard-1" not in error["message"], error
            assert [detail["message"] for detail in error["details"]] == ["shard-0 did not answer"]
    finally:
        for actor in stopped:
            signal_replica(actor, signal.SIGCONT)
    response = httpx.post(f"{url}/search", json=BODIES[0], timeout=60)
    assert response.status_code == 200, response.text
    same(expected[0], without_version(response.json()))


def test_a_jobs_replica_killed_mid_job_is_replaced_and_the_job_resumed(
    deployed: tuple[str, list[dict[str, Any]]],
) -> None:
    """SIGKILL of the jobs deployment's one replica while a job runs: until Serve has started a
    new one, the job routes answer 503 `jobs_unavailable`; the new replica resumes the job from
    its last counted batch to `succeeded`, every document indexed once."""
    url, _ = deployed
    ids = [f"resumed-{n}" for n in range(JOB_DOCUMENTS)]
    lines = [
        json.dumps({"id": i, "title": f"Ferry {i}", "text": f"The ferry {i} sails at dawn from the pier."})
        for i in ids
    ]
    before = replicas("jobs")
    assert len(before) == 1
    with httpx.Client(base_url=url, timeout=120) as client:
        documents_before = client.get("/healthz").json()["documents"]
        submitted = client.post(
            "/jobs/ingest?batch_size=1",
            content="\n".join(lines),
            headers={"content-type": "application/x-ndjson"},
        )
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["location"]
        deadline = time.monotonic() + RESTORE_DEADLINE_SECONDS
        while (job := client.get(location).json())["done"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job["state"] == "running" and 2 <= job["done"] < JOB_DOCUMENTS, job  # killed mid-job
        signal_replica(before[0], signal.SIGKILL)

        answers: list[tuple[int, str]] = []
        while time.monotonic() < deadline:
            followed = client.get(location)
            state = followed.json()["state"] if followed.status_code == 200 else ""
            answers.append((followed.status_code, followed.json()["error"]["code"] if state == "" else state))
            if state in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        job = followed.json()
        assert (job["state"], job["done"], job["errors_total"]) == ("succeeded", JOB_DOCUMENTS, 0), job
        assert {code for status, code in answers if status != 200} <= {"jobs_unavailable"}, answers
        assert client.get("/healthz").json()["documents"] == documents_before + JOB_DOCUMENTS
        indexed = {d["id"] for d in client.get("/documents").json()["documents"]}
        assert set(ids) <= indexed
    now = replicas("jobs")
    assert len(now) == 1 and now[0].name != before[0].name and running_replicas("jobs") == 1
