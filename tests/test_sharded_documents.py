"""The sharded service's writes over HTTP (`service.sharded.documents`), its writers and shard
deployments running in this process (tests/sharded_in_process.py): what a write's response
names, and that a write waits for no query replica."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import load_corpus
from index.embedding import HashingEmbedder
from index.search.reader import IndexReader
from index.sharding.assignment import shard_of
from index.sharding.layout import ShardedLayout
from index.sharding.shard import EMPTY_VERSION
from index.sharding.writer import ShardedWriter
from service.config import EmbedderKind
from tests.conftest import BUNDLED_CORPUS, make_settings

pytest.importorskip("ray")
from service.app import create_app
from service.sharded.deployments import ShardDeployment
from tests.sharded_in_process import in_process_engine

SHARDS = 3
ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, ShardedLayout, list[int]]]:
    """A client of the sharded app over the bundled corpus in 3 shards, the layout, and the
    shards whose query replicas were asked for their health (in call order)."""
    settings = make_settings(
        tmp_path / "index", shards=SHARDS, admin_keys=["admin"], embedder=EmbedderKind.HASHING
    )
    layout = ShardedLayout.open_or_create(settings.index_dir, SHARDS)
    ShardedWriter(layout, HashingEmbedder(), settings=settings.index_settings()).sync(
        load_corpus([BUNDLED_CORPUS])
    )
    asked: list[int] = []
    health = ShardDeployment.health

    def recorded(self: ShardDeployment, collection: str) -> Any:
        asked.append(self.shard)
        return health(self, collection)

    monkeypatch.setattr(ShardDeployment, "health", recorded)
    with TestClient(create_app(settings, engine=in_process_engine(settings, SHARDS))) as client:
        asked.clear()  # start-up checks the shards
        yield client, layout, asked


def live(layout: ShardedLayout) -> tuple[str, int, int]:
    """(version, documents, chunks) of every shard's CURRENT, read from disk."""
    versions, documents, chunks = [], 0, 0
    for store in layout.stores():
        if store.current() is None:
            versions.append(EMPTY_VERSION)
            continue
        reader = IndexReader.open(store)
        versions.append(reader.version)
        documents, chunks = documents + reader.document_count, chunks + reader.chunk_count
    return ",".join(versions), documents, chunks


def test_a_write_names_every_shard_s_live_commit_and_asks_no_query_replica(
    served: tuple[TestClient, ShardedLayout, list[int]],
) -> None:
    client, layout, asked = served
    before = live(layout)
    owners = {shard_of(f"dispatch-{n}", SHARDS) for n in range(12)}
    assert owners == set(range(SHARDS))  # the writes below touch every shard in turn
    for n in range(12):
        previous = live(layout)[0].split(",")
        text = f"Dispatch {n}: the ferry sails at {n} pm."
        written = client.post("/documents", json={"id": f"dispatch-{n}", "text": text}, headers=ADMIN)
        assert written.status_code == 200, written.text
        body = written.json()
        assert (body["status"], body["document_id"]) == ("added", f"dispatch-{n}")
        assert (body["index_version"], body["documents"], body["chunks"]) == live(layout)
        versions, owner = body["index_version"].split(","), shard_of(f"dispatch-{n}", SHARDS)
        assert [versions[shard] == previous[shard] for shard in range(SHARDS)] == [
            shard != owner for shard in range(SHARDS)
        ]
    assert asked == []  # every figure came from the writers
    removed = client.delete("/documents/dispatch-0", headers=ADMIN)
    assert removed.status_code == 200, removed.text
    assert (removed.json()["index_version"], removed.json()["documents"]) == live(layout)[:2]
    assert live(layout)[1] == before[1] + 11
    assert asked == []
    health = client.get("/healthz", headers=ADMIN).json()
    assert (health["index_version"], health["documents"], health["chunks"]) == live(layout)


def test_after_a_write_a_known_question_asks_only_the_written_shard_for_its_state(
    served: tuple[TestClient, ShardedLayout, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, layout, _ = served
    calls: list[tuple[str, int, bool]] = []  # (method, shard, live_only)
    state, candidates = ShardDeployment.state, ShardDeployment.candidates

    def recorded_state(self: ShardDeployment, collection: str, terms: tuple[str, ...]) -> Any:
        calls.append(("state", self.shard, False))
        return state(self, collection, terms)

    def recorded_candidates(self: ShardDeployment, collection: str, request: Any) -> Any:
        calls.append(("candidates", self.shard, request.live_only))
        return candidates(self, collection, request)

    monkeypatch.setattr(ShardDeployment, "state", recorded_state)
    monkeypatch.setattr(ShardDeployment, "candidates", recorded_candidates)
    question = {"q": "which ferry sails at noon", "k": 3}
    other = {"q": "who runs the harbour", "k": 3}
    assert client.get("/search", params=question, headers=ADMIN).status_code == 200
    assert client.get("/search", params=other, headers=ADMIN).status_code == 200
    calls.clear()
    assert client.get("/search", params=question, headers=ADMIN).status_code == 200
    assert sorted(calls) == [("candidates", shard, True) for shard in range(SHARDS)]  # all known

    owner = shard_of("ferry-noon", SHARDS)
    text = "The ferry sails at noon, the harbour master said."
    assert (
        client.post("/documents", json={"id": "ferry-noon", "text": text}, headers=ADMIN).status_code == 200
    )
    calls.clear()
    found = client.get("/search", params=question, headers=ADMIN)
    assert found.status_code == 200, found.text
    # One round, no refusal: the write told the searcher which shard's commit moved on.
    assert sorted(calls) == sorted(
        [("state", owner, False)] + [("candidates", shard, shard != owner) for shard in range(SHARDS)]
    )
    assert found.json()["index_version"] == live(layout)[0]
    assert found.json()["results"][0]["document"]["id"] == "ferry-noon"
    # That one call was asked of the terms known of the shard's previous commit too: a question
    # asked before the write needs no `state` call.
    calls.clear()
    again = client.get("/search", params=other, headers=ADMIN)
    assert again.status_code == 200, again.text
    assert sorted(calls) == [("candidates", shard, True) for shard in range(SHARDS)]
    assert again.json()["index_version"] == live(layout)[0]
