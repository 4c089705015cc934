"""Snapshots and restores; what `rag build` does beside other writers; converting the earlier format."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from corpus import Document
from index.embedding import HashingEmbedder
from index.errors import DamagedSnapshotError, IndexCorruptError, IndexMismatchError
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.building import build_segment_data
from index.write.writer import IndexWriter
from service.app import create_app
from service.engine import Engine
from tests.conftest import CountingEmbedder, engine_with_fake_embedder, make_settings

QUESTION = "what projects could Larijani's visit accelerate?"


def writer_for(root: Path, embedder: HashingEmbedder | None = None) -> IndexWriter:
    return IndexWriter(IndexStore(root), embedder or HashingEmbedder(), settings=IndexSettings())


def answers(root: Path) -> list[tuple[str, float, int, int]]:
    reader = IndexReader.open(IndexStore(root))
    outcome = Retriever(reader, HashingEmbedder(), RetrievalOptions()).search(QUESTION, k=5)
    return [(h.chunk.id, h.score, h.answer.start, h.answer.end) for h in outcome.hits]


def test_a_restored_snapshot_answers_as_when_it_was_taken(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    writer.upsert([Document(id="extra", text="The Peace Pipeline may open next year, officials said.")])
    store = IndexStore(tmp_path)
    kept = store.snapshot("before")
    before, version = answers(tmp_path), kept.version
    writer.delete(["nournews-larijani-visit"])
    writer.upsert([Document(id="later", text="Projects such as the port were delayed again.")])
    writer.merge(force=True)  # the snapshot's segments are no longer live, and cleaned up
    assert answers(tmp_path) != before
    restored = writer.restore("before").commit
    assert answers(tmp_path) == before
    assert restored.generation > kept.generation and restored.version > version  # never backwards
    assert store.snapshot_names() == ["before"]
    with pytest.raises(FileExistsError):
        store.snapshot("before")
    with pytest.raises(FileNotFoundError):
        store.snapshot_commit("nope")
    with pytest.raises(ValueError, match="invalid snapshot name"):
        store.snapshot("../escape")


def test_snapshot_routes_need_an_admin_key_and_work(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    settings = make_settings(tmp_path / "index", admin_keys=["admin"], api_keys=["reader"])
    engine = Engine.from_settings(settings, embedder=HashingEmbedder())
    engine.sync(bundled_documents)
    admin = {"Authorization": "Bearer admin"}
    with TestClient(create_app(settings, engine=engine)) as client:
        assert (
            client.post("/admin/snapshots", json={"name": "s1"}, headers={"X-API-Key": "reader"}).status_code
            == 403
        )
        made = client.post("/admin/snapshots", json={"name": "s1"}, headers=admin)
        assert made.status_code == 201 and made.json()["documents"] == 3
        assert client.post("/admin/snapshots", json={"name": "s1"}, headers=admin).status_code == 409
        assert client.post("/admin/snapshots", json={"name": "../x"}, headers=admin).status_code == 422
        client.delete("/documents/nournews-larijani-visit", headers=admin)
        assert client.get("/healthz").json()["documents"] == 2
        listed = client.get("/admin/snapshots", headers=admin).json()["snapshots"]
        assert [s["name"] for s in listed] == ["s1"]
        restored = client.post("/admin/snapshots/s1/restore", headers=admin)
        assert restored.status_code == 200
        assert client.get("/healthz").json() | {} == client.get("/healthz").json()
        assert client.get("/healthz").json()["documents"] == 3
        assert client.get("/documents/nournews-larijani-visit", headers=admin).status_code == 200
        assert client.post("/admin/snapshots/nope/restore", headers=admin).status_code == 404
        optimized = client.post("/admin/optimize", headers=admin)
        assert optimized.status_code == 200 and optimized.json()["segments"] == 1


def test_a_build_keeps_what_other_writers_added_and_applies_file_changes(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    over_http = Document(id="over-http", text="Added over HTTP between two builds.")
    writer.upsert([over_http])
    # `make run` again with the same files: nothing to apply, and the report says what is kept.
    again = writer.sync(bundled_documents)
    assert not again.changed and again.kept == ["over-http"]
    assert again.reader.document("over-http") == over_http
    # A file changed and another removed since the last build: both applied, the HTTP one kept.
    edited = Document(**{**bundled_documents[0].to_dict(), "text": bundled_documents[0].text + " Edited."})
    result = writer.sync([edited, bundled_documents[1]])
    assert result.replaced == [edited.id] and result.removed == [bundled_documents[2].id]
    assert result.kept == ["over-http"] and result.reader.document_count == 3
    # A document changed over HTTP since the build stays as it is while its file is unchanged.
    changed = Document(**{**bundled_documents[1].to_dict(), "title": "Retitled over HTTP"})
    writer.upsert([changed])
    kept = writer.sync([edited, bundled_documents[1]])
    assert not kept.changed and kept.reader.document(changed.id) == changed and changed.id in kept.kept
    # --exact: exactly the files.
    exact = writer.sync([edited, bundled_documents[1]], exact=True)
    assert sorted(exact.removed) == ["over-http"] and exact.replaced == [changed.id]
    assert sorted(exact.reader.document_ids()) == sorted([edited.id, bundled_documents[1].id])


def test_make_run_keeps_a_document_added_over_http(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from service import cli as cli_module
    from service.config import get_settings

    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setattr(cli_module, "_engine", engine_with_fake_embedder)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(cli_module.cli, ["build"]).exit_code == 0
        engine = Engine.from_settings(get_settings(), embedder=HashingEmbedder())
        engine.upsert([Document(id="over-http", text="Added over HTTP.")])
        output = runner.invoke(cli_module.cli, ["build"]).output
        assert "nothing to do" in output and "4 documents in all" in output and "1 kept" in output
        assert IndexReader.open(IndexStore(tmp_path / "index")).document("over-http") is not None
    finally:
        get_settings.cache_clear()


def write_legacy_index(root: Path, documents: list[Document]) -> None:
    """An index in the earlier single-generation format, as that version wrote it."""
    settings = IndexSettings()
    data = build_segment_data(documents, HashingEmbedder(), settings)
    directory = root / "generations" / "20261121T044247544441Z-962bc312"
    directory.mkdir(parents=True)
    ordered = data.documents.originals
    assert ordered is not None
    lines = [json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in ordered]
    (directory / "documents.jsonl").write_text("".join(lines), "utf-8")
    chunks = []
    for document_row, start, end in data.chunks.tolist():
        document = ordered[document_row]
        chunks.append(
            {
                "id": f"{document.id}#{start}-{end}",
                "document_id": document.id,
                "start": start,
                "end": end,
                "text": document.text[start:end],
            }
        )
    (directory / "chunks.jsonl").write_text(
        "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks), "utf-8"
    )
    np.save(directory / "chunk_vectors.npy", data.chunk_vectors)
    with open(directory / "sentences.npz", "wb") as handle:
        np.savez(
            handle,
            ptr=data.sentence_ptr,
            spans=data.sentence_spans,
            vectors=data.sentence_vectors,
            questions=data.sentence_questions,
        )
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}
    manifest = {
        "format": 1,
        "index_version": directory.name,
        "model": {"name": "hashing-fake", "dimension": 64},
        "settings": settings.to_dict(),
        "files": files,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    (root / "CURRENT").write_text(directory.name, "utf-8")


def test_an_index_in_the_earlier_format_is_refused_then_converted_by_a_build(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    over_http = Document(id="over-http", text="Added over HTTP to the old index.")
    write_legacy_index(tmp_path, [*bundled_documents, over_http])
    with pytest.raises(IndexMismatchError, match="run `rag build` to convert"):
        IndexReader.open(IndexStore(tmp_path))
    with pytest.raises(IndexMismatchError, match="rag build"):
        writer_for(tmp_path).upsert([Document(id="x", text="Text.")])
    embedder = CountingEmbedder()
    converted = writer_for(tmp_path, embedder).sync(bundled_documents)
    assert embedder.embedded == []  # every vector carried over
    assert converted.reader.document("over-http") == over_http and converted.kept == ["over-http"]
    assert converted.reader.document_count == 4
    assert not (tmp_path / "generations").exists()
    assert IndexReader.open(IndexStore(tmp_path)).version.startswith("g")


def damage_snapshot(root: Path, name: str, kind: str) -> Path:
    """Damage snapshot `name` as `kind` says, leaving the live index intact; returns the file."""
    directory = root / "snapshots" / name
    if kind == "commit point":
        path = directory / "commit.json"
        data = path.read_bytes()
        assert data.count(b'"documents": 3,') == 1
        path.write_bytes(data.replace(b'"documents": 3,', b'"documents": 2,'))
    elif kind == "segment file":
        path = sorted(directory.glob("segments/*/documents.jsonl"))[0]
        data = path.read_bytes()
        path.unlink()  # a copy of its own: the live index's link stays intact
        path.write_bytes(data[:-12] + b"garbage!!!\n")
    else:
        [path] = directory.glob("deletes/*")
        path.unlink()
    return path


def snapshot_then_change(writer: IndexWriter) -> None:
    """A snapshot with a deletes file ("s"), then a later write to the live index."""
    writer.upsert([Document(id="extra", text="The Peace Pipeline may open next year, officials said.")])
    writer.delete(["nournews-larijani-visit"])
    writer.store.snapshot("s")
    writer.upsert([Document(id="after", text="A dispatch written after the snapshot.")])


@pytest.mark.parametrize("kind", ["commit point", "segment file", "deletes file"])
def test_a_damaged_snapshot_is_refused_and_the_index_left_as_it_was(
    tmp_path: Path, bundled_documents: list[Document], kind: str
) -> None:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    engine.sync(bundled_documents)
    snapshot_then_change(engine.writer())
    damaged = damage_snapshot(engine.store.root, "s", kind)
    current = (engine.store.root / "CURRENT").read_bytes()
    with pytest.raises(IndexCorruptError, match=rf"snapshot 's' is damaged.*{damaged}") as raised:
        engine.restore("s")
    assert isinstance(raised.value, DamagedSnapshotError)
    assert (engine.store.root / "CURRENT").read_bytes() == current
    engine.upsert([Document(id="later", text="A later dispatch on rail freight.")])
    ids = set(IndexReader.open(IndexStore(engine.store.root)).document_ids())
    assert ids == {d.id for d in bundled_documents} - {"nournews-larijani-visit"} | {
        "extra",
        "after",
        "later",
    }


def test_rag_restore_refuses_a_damaged_snapshot(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from service import cli as cli_module
    from service.config import get_settings

    index = tmp_path / "index"
    writer = writer_for(index)
    writer.sync(bundled_documents)
    snapshot_then_change(writer)
    damaged = damage_snapshot(index, "s", "segment file")
    current = (index / "CURRENT").read_bytes()
    monkeypatch.setenv("RAG_INDEX_DIR", str(index))
    monkeypatch.setattr(cli_module, "_engine", engine_with_fake_embedder)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_module.cli, ["restore", "s"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "snapshot 's' is damaged" in result.output and str(damaged) in result.output.replace("\n", "")
    assert (index / "CURRENT").read_bytes() == current
    assert writer.upsert([Document(id="later", text="A later dispatch.")]).reader.document("later")


def test_the_restore_route_refuses_a_damaged_snapshot_with_409(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    settings = make_settings(tmp_path / "index", admin_keys=["admin"])
    engine = Engine.from_settings(settings, embedder=HashingEmbedder())
    engine.sync(bundled_documents)
    snapshot_then_change(engine.writer())
    engine.snapshot("t")
    damaged = damage_snapshot(engine.store.root, "s", "commit point")
    while engine.merge().results:  # now, so that the app's merge thread finds nothing to commit
        pass
    current = (engine.store.root / "CURRENT").read_bytes()
    admin = {"Authorization": "Bearer admin"}
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
        version = client.get("/healthz").json()["index_version"]
        listed = client.get("/admin/snapshots", headers=admin)
        assert listed.status_code == 200, listed.text  # one damaged snapshot hides none of the others
        assert [kept["name"] for kept in listed.json()["snapshots"]] == ["t"]
        [broken] = listed.json()["damaged"]
        assert broken["name"] == "s" and str(damaged) in broken["problem"]
        response = client.post("/admin/snapshots/s/restore", headers=admin)
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "snapshot_damaged" and str(damaged) in error["message"]
        assert (engine.store.root / "CURRENT").read_bytes() == current
        assert client.get("/healthz").json()["index_version"] == version
        added = client.post("/documents", json={"id": "later", "text": "A later dispatch."}, headers=admin)
        assert added.status_code == 200 and added.json()["documents"] == 5
