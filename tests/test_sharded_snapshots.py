"""Snapshots of a sharded index over HTTP (`service.sharded.snapshots`), its writers and shard
deployments running in this process (tests/sharded_in_process.py): a snapshot is every shard's
snapshot of one name; listing, restoring, and what is refused with nothing changed; and
`/admin/recover`, every shard's recovery."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import Document, load_corpus
from index.embedding import HashingEmbedder
from index.sharding.assignment import shard_of
from index.sharding.layout import ShardedLayout
from index.sharding.writer import ShardedWriter
from service.app import create_app
from service.config import EmbedderKind
from tests.conftest import BUNDLED_CORPUS, EXAMPLE_QUESTION, make_settings
from tests.test_recovery import damage_in_place, new_segment_of
from tests.test_snapshots_and_builds import damage_snapshot

pytest.importorskip("ray")
from tests.sharded_in_process import in_process_engine

SHARDS = 2
ADMIN = {"Authorization": "Bearer admin"}
LATER = {"id": "later-dispatch", "title": "Later", "text": "The Peace Pipeline talks resumed on Monday."}


def corpus() -> list[Document]:
    articles = load_corpus([BUNDLED_CORPUS])
    return articles + [replace(a, id=f"{a.id}-syndicated", source="Syndicated") for a in articles]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, ShardedLayout]]:
    """A client of the sharded app over `corpus()` in 2 shards (both hold documents), and the layout."""
    assert {shard_of(document.id, SHARDS) for document in corpus()} == set(range(SHARDS))
    settings = make_settings(
        tmp_path / "index", shards=SHARDS, admin_keys=["admin"], embedder=EmbedderKind.HASHING
    )
    layout = ShardedLayout.open_or_create(settings.index_dir, SHARDS)
    ShardedWriter(layout, HashingEmbedder(), settings=settings.index_settings()).sync(corpus())
    with TestClient(create_app(settings, engine=in_process_engine(settings, SHARDS))) as client:
        yield client, layout


def currents(layout: ShardedLayout) -> list[bytes]:
    return [(store.root / "CURRENT").read_bytes() for store in layout.stores()]


def search(client: TestClient) -> list[tuple[str, float]]:
    found = client.post("/search", json={"query": EXAMPLE_QUESTION, "k": 6}, headers=ADMIN).json()
    return [(hit["document"]["id"], hit["score"]) for hit in found["results"]]


def test_a_snapshot_keeps_every_shard_and_a_restore_brings_it_back(
    served: tuple[TestClient, ShardedLayout],
) -> None:
    client, layout = served
    before = client.get("/healthz", headers=ADMIN).json()
    answers = search(client)
    made = client.post("/admin/snapshots", json={"name": "before"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert (made.json()["index_version"], made.json()["documents"]) == (before["index_version"], 6)
    assert all((store.snapshots_dir / "before" / "commit.json").is_file() for store in layout.stores())

    assert client.post("/documents", json=LATER, headers=ADMIN).json()["documents"] == 7
    assert client.delete("/documents/nournews-larijani-visit", headers=ADMIN).status_code == 200
    assert search(client) != answers
    listed = client.get("/admin/snapshots", headers=ADMIN).json()
    assert listed == {"snapshots": [made.json()], "damaged": []}

    restored = client.post("/admin/snapshots/before/restore", headers=ADMIN)
    assert restored.status_code == 200, restored.text
    after = client.get("/healthz", headers=ADMIN).json()
    assert restored.json()["restored"] == made.json()
    assert restored.json()["index_version"] == after["index_version"] != before["index_version"]
    assert after["documents"] == 6
    restored_answers = search(client)
    assert [hit for hit, _ in restored_answers] == [hit for hit, _ in answers]
    assert [score for _, score in restored_answers] == pytest.approx([score for _, score in answers])


def refused(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    message: str = error["message"]
    return message


def test_what_a_sharded_snapshot_refuses_changes_nothing(served: tuple[TestClient, ShardedLayout]) -> None:
    client, layout = served
    assert client.post("/admin/snapshots", json={"name": "kept"}, headers=ADMIN).status_code == 201
    again = client.post("/admin/snapshots", json={"name": "kept"}, headers=ADMIN)
    assert "already exists" in refused(again, 409, "snapshot_exists")

    layout.store(0).snapshot("half")  # as a snapshot cut short after its first shard would leave it
    assert "shard-0" in refused(
        client.post("/admin/snapshots", json={"name": "half"}, headers=ADMIN), 409, "snapshot_exists"
    )
    listed = client.get("/admin/snapshots", headers=ADMIN).json()
    assert [entry["name"] for entry in listed["snapshots"]] == ["kept"]
    assert listed["damaged"] == [{"name": "half", "problem": "shard-1: missing"}]
    live = currents(layout)
    message = refused(client.post("/admin/snapshots/half/restore", headers=ADMIN), 404, "snapshot_not_found")
    assert "shard-1" in message
    assert currents(layout) == live

    damaged = damage_snapshot(layout.store(1).root, "kept", "segment file")
    message = refused(client.post("/admin/snapshots/kept/restore", headers=ADMIN), 409, "snapshot_damaged")
    assert "shard-1" in message and str(damaged) in message
    assert currents(layout) == live  # shard 0's intact snapshot was not restored either
    assert not (layout.store(0).snapshots_dir / "missing").exists()
    assert client.post("/admin/snapshots/missing/restore", headers=ADMIN).status_code == 404


def test_a_shard_nothing_was_written_to_is_kept_empty_and_restored_empty(
    served: tuple[TestClient, ShardedLayout], tmp_path: Path
) -> None:
    """A collection whose one document hashed to one shard: the snapshot gives the other shard an
    empty commit and keeps it; a document written there later is gone again after the restore."""
    client, _ = served
    lone = {"id": "arctic-1", "text": "The icebreaker fleet will serve Murmansk from next winter."}
    written = client.post("/collections/arctic/documents", json=lone, headers=ADMIN)
    assert written.status_code == 200, written.text
    assert written.json()["index_version"].split(",")[1 - shard_of("arctic-1", SHARDS)] == "empty"
    arctic = ShardedLayout.open(tmp_path / "collections" / "arctic", SHARDS)
    empty = 1 - shard_of("arctic-1", SHARDS)
    question = {"query": "icebreaker fleet Murmansk", "k": 3}
    answers = client.post("/collections/arctic/search", json=question, headers=ADMIN).json()["results"]

    made = client.post("/collections/arctic/admin/snapshots", json={"name": "s"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert made.json()["documents"] == 1 and "empty" not in made.json()["index_version"]
    kept = arctic.store(empty).snapshot_commit("s")
    assert kept.segments == () and arctic.store(empty).current() == kept
    after = client.post("/collections/arctic/search", json=question, headers=ADMIN).json()["results"]
    assert after == answers

    second = {
        "id": next(f"arctic-{n}" for n in range(2, 99) if shard_of(f"arctic-{n}", SHARDS) == empty),
        "text": "A second dispatch on the icebreaker fleet.",
    }
    assert client.post("/collections/arctic/documents", json=second, headers=ADMIN).json()["documents"] == 2
    restored = client.post("/collections/arctic/admin/snapshots/s/restore", headers=ADMIN)
    assert restored.status_code == 200, restored.text
    listed = client.get("/collections/arctic/documents", headers=ADMIN).json()["documents"]
    assert [document["id"] for document in listed] == ["arctic-1"]
    assert (
        client.post("/collections/arctic/search", json=question, headers=ADMIN).json()["results"] == answers
    )
    assert client.get("/admin/snapshots", headers=ADMIN).json() == {"snapshots": [], "damaged": []}


def test_recover_goes_back_on_the_damaged_shard_alone(served: tuple[TestClient, ShardedLayout]) -> None:
    client, layout = served
    version = client.get("/healthz", headers=ADMIN).json()["index_version"]
    intact = client.post("/admin/recover", headers=ADMIN).json()
    assert (intact["recovered"], intact["damage"], intact["index_version"]) == (False, None, version)
    assert re.fullmatch(r"shard-0/commits/\d+\.json, shard-1/commits/\d+\.json", intact["source"])
    assert intact["lost_documents"] == intact["returned_documents"] == intact["unreadable_segments"] == []

    new_id = next(f"late-{n}" for n in range(99) if shard_of(f"late-{n}", SHARDS) == 1)
    assert client.post("/documents", json={**LATER, "id": new_id}, headers=ADMIN).status_code == 200
    damage_in_place(new_segment_of(layout.store(1).root, new_id) / "documents.jsonl")
    shard_0 = currents(layout)[0]
    recovered = client.post("/admin/recover", headers=ADMIN)
    assert recovered.status_code == 200, recovered.text
    answer = recovered.json()
    assert answer["recovered"] is True and answer["damage"].startswith("shard-1: ")
    assert answer["lost_documents"] == [new_id] and answer["source"].startswith(
        intact["source"].split(",")[0]
    )
    assert currents(layout)[0] == shard_0  # the intact shard is left as it was
    assert answer["index_version"] == client.get("/healthz", headers=ADMIN).json()["index_version"]
    listed = client.get("/documents", headers=ADMIN).json()["documents"]
    assert len(listed) == 6 and new_id not in {document["id"] for document in listed}
    assert search(client)
