"""Going back to the newest intact commit point when the live one is damaged (`rag restore
--last-good`, `POST /admin/recover`): which commit comes back, and what the answer says was lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from corpus import Document
from index.embedding import HashingEmbedder
from index.errors import DamagedIndexError, NoIntactCommitError
from index.search.reader import IndexReader
from index.storage.store import IndexStore
from service import cli as cli_module
from service.app import create_app
from service.config import get_settings
from service.engine import Engine
from tests.conftest import engine_with_fake_embedder, make_settings
from tests.test_store import EXTRA, flip_byte, with_an_added_document, writer_for


def new_segment_of(root: Path, document_id: str) -> Path:
    reader = IndexReader.open(IndexStore(root))
    found = reader.location(document_id)
    assert found is not None
    return reader.segments[found[0]].directory


def damage_in_place(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


def run_cli(root: Path, monkeypatch: pytest.MonkeyPatch, *arguments: str) -> tuple[int, str]:
    monkeypatch.setenv("RAG_INDEX_DIR", str(root))
    monkeypatch.setattr(cli_module, "_engine", engine_with_fake_embedder)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_module.cli, list(arguments))
    finally:
        get_settings.cache_clear()
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_last_good_after_a_damaged_segment_file_lists_the_lost_documents(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, _ = with_an_added_document(tmp_path, bundled_documents)
    damaged = new_segment_of(tmp_path, "extra") / "documents.jsonl"
    damage_in_place(damaged)
    with pytest.raises(DamagedIndexError):
        IndexReader.open(IndexStore(tmp_path))
    code, output = run_cli(tmp_path, monkeypatch, "restore", "--last-good")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "lost extra" and len(lines) == 2
    assert lines[1].startswith("index g0000000003-") and "commits/0000000001.json" in lines[1]
    assert str(damaged) in lines[1]
    reader = IndexReader.open(IndexStore(tmp_path))
    assert sorted(reader.document_ids()) == sorted(d.id for d in bundled_documents)
    assert writer.upsert([EXTRA]).reader.document("extra") == EXTRA  # writes go on


def test_last_good_when_the_live_commit_point_is_damaged(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer, _ = with_an_added_document(tmp_path, bundled_documents)
    writer.delete(["nournews-larijani-visit"])
    live = tmp_path / "commits" / "0000000003.json"
    flip_byte(live, b'"deleted": 1,', b'"deleted": 0,')
    engine = Engine.from_settings(make_settings(tmp_path), embedder=HashingEmbedder())
    recovery = engine.recover()
    plan = recovery.plan
    assert plan.damage is not None and str(live) in plan.damage
    assert plan.source == tmp_path / "commits" / "0000000002.json" and plan.snapshot is None
    assert plan.loss.missing == [] and plan.loss.returned == ["nournews-larijani-visit"]
    assert recovery.reader.commit.generation == 4 and engine.retriever.reader.document_count == 4
    assert engine.upsert([Document(id="later", text="A later dispatch.")]).reader.document_count == 5


def test_last_good_goes_back_to_a_snapshot_when_no_commit_is_intact(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    writer.store.snapshot("first")
    writer.upsert([EXTRA])
    writer.upsert([Document(id="second", text="A second new article.")])
    damage_in_place(new_segment_of(tmp_path, "extra") / "chunks.npy")  # in both kept commits
    recovery = writer.recover()
    assert recovery.plan.snapshot == "first"
    assert recovery.plan.source == tmp_path / "snapshots" / "first" / "commit.json"
    assert recovery.plan.loss.missing == ["extra", "second"]
    assert sorted(IndexReader.open(IndexStore(tmp_path)).document_ids()) == sorted(
        d.id for d in bundled_documents
    )


def test_last_good_after_a_damaged_current_loses_nothing(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    writer.delete(["nournews-larijani-visit"])
    flip_byte(tmp_path / "CURRENT", b"0000000002.json", b"0000000001.json")
    recovery = writer.recover()
    assert recovery.plan.source == tmp_path / "commits" / "0000000002.json"
    assert recovery.plan.loss.nothing and recovery.reader.document("nournews-larijani-visit") is None


def test_last_good_without_current_says_what_the_live_commit_held_is_unknown(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_an_added_document(tmp_path, bundled_documents)
    (tmp_path / "CURRENT").unlink()
    code, output = run_cli(tmp_path, monkeypatch, "restore", "--last-good")
    assert code == 0, output
    unknown, version = output.splitlines()
    assert unknown.startswith("unknown: which commit was live cannot be read")
    assert "commits/0000000002.json" in version and "CURRENT is missing)" in version
    assert IndexReader.open(IndexStore(tmp_path)).document("extra") == EXTRA


def test_last_good_changes_nothing_when_the_live_commit_is_intact(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer_for(tmp_path).sync(bundled_documents)
    current = (tmp_path / "CURRENT").read_bytes()
    code, output = run_cli(tmp_path, monkeypatch, "restore", "--last-good")
    assert code == 0 and output.startswith("index g0000000001-") and "intact: nothing lost" in output
    assert (tmp_path / "CURRENT").read_bytes() == current
    code, output = run_cli(tmp_path, monkeypatch, "restore")
    assert code == 2 and "give a snapshot NAME, or --last-good" in output


def test_last_good_with_nothing_intact_is_a_clear_error(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, _ = with_an_added_document(tmp_path, bundled_documents)
    damage_in_place(new_segment_of(tmp_path, "nournews-larijani-visit") / "documents.jsonl")
    current = (tmp_path / "CURRENT").read_bytes()
    with pytest.raises(NoIntactCommitError, match="no commit point under commits/ or snapshots/ passes"):
        writer.recover()
    code, output = run_cli(tmp_path, monkeypatch, "restore", "--last-good")
    assert code == 1 and "no commit point under commits/ or snapshots/ passes" in output
    assert (tmp_path / "CURRENT").read_bytes() == current


def test_the_recover_route(tmp_path: Path, bundled_documents: list[Document]) -> None:
    settings = make_settings(tmp_path / "index", admin_keys=["admin"], api_keys=["reader"])
    engine = Engine.from_settings(settings, embedder=HashingEmbedder())
    engine.sync(bundled_documents)
    admin = {"Authorization": "Bearer admin"}
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.post("/admin/recover", headers={"X-API-Key": "reader"}).status_code == 403
        intact = client.post("/admin/recover", headers=admin)
        assert intact.status_code == 200 and intact.json()["recovered"] is False
        assert intact.json()["source"] == "commits/0000000001.json"
        client.post("/documents", json={"id": "extra", "text": EXTRA.text}, headers=admin)
        damage_in_place(new_segment_of(engine.store.root, "extra") / "ids.json")
        response = client.post("/admin/recover", headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["recovered"] is True and body["source"] == "commits/0000000001.json"
        assert body["lost_documents"] == [] and body["returned_documents"] == []
        [unreadable] = body["unreadable_segments"]  # its ids are what was damaged: a count only
        assert unreadable["documents"] == 1 and "ids.json" in body["damage"]
        health = client.get("/healthz").json()
        assert health["index_version"] == body["index_version"] and health["documents"] == 3
        damage_in_place(new_segment_of(engine.store.root, "nournews-larijani-visit") / "documents.jsonl")
        refused = client.post("/admin/recover", headers=admin)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_intact_commit"


def test_a_snapshot_restore_goes_back_from_a_damaged_index(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer, _ = with_an_added_document(tmp_path, bundled_documents)
    writer.store.snapshot("kept")
    path = new_segment_of(tmp_path, "extra") / "documents.jsonl"
    data = path.read_bytes()
    path.unlink()  # another copy, damaged: the snapshot's link keeps the good one
    path.write_bytes(data[:-5] + b"!!!!\n")
    with pytest.raises(DamagedIndexError, match=r"documents\.jsonl is damaged"):
        IndexReader.open(IndexStore(tmp_path))
    writer_for(tmp_path).restore("kept")
    reader = IndexReader.open(IndexStore(tmp_path))  # every file verified afresh
    assert reader.document("extra") == EXTRA and path.read_bytes() == data
