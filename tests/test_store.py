"""The index directory: segments and commit points, checks on load, what each write costs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.embedding import HashingEmbedder
from index.errors import DamagedIndexError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.reader import IndexReader
from index.settings import IndexSettings
from index.store import IndexStore
from index.writer import IndexWriter
from tests.conftest import CountingEmbedder


def writer_for(root: Path, embedder: HashingEmbedder | None = None, **options: object) -> IndexWriter:
    return IndexWriter(IndexStore(root), embedder or HashingEmbedder(), settings=IndexSettings(), **options)  # type: ignore[arg-type]


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag build"):
        IndexReader.open(IndexStore(tmp_path))


def test_build_then_open_round_trip(tmp_path: Path, bundled_documents: list[Document]) -> None:
    result = writer_for(tmp_path).sync(bundled_documents)
    reader = IndexReader.open(IndexStore(tmp_path))
    assert reader.version == result.reader.version and reader.version.startswith("g0000000001-")
    commit = json.loads((tmp_path / "commits" / reader.commit.file_name).read_text())
    assert commit["model"] == {"name": "hashing-fake", "dimension": 64}
    assert commit["settings"]["chunker"] == {
        "chunk_size": 200,
        "chunk_overlap": 40,
        "length_unit": "word-pieces",
    }
    [segment] = reader.segments
    meta = json.loads((segment.directory / "meta.json").read_text())
    assert meta["documents"] == 3 and meta["chunks"] == reader.chunk_count
    assert set(meta["files"]) >= {"documents.jsonl", "chunks.npy", "chunk_vectors.npy", "terms.json"}
    assert sorted(d.id for d in reader.documents()) == sorted(d.id for d in bundled_documents)
    for row in range(reader.chunk_count):
        chunk = reader.chunk(row)
        assert reader.document(chunk.document_id).text[chunk.start : chunk.end] == chunk.text  # type: ignore[union-attr]


def test_unchanged_corpus_is_a_no_op(tmp_path: Path, bundled_documents: list[Document]) -> None:
    first = writer_for(tmp_path).sync(bundled_documents)
    embedder = CountingEmbedder()
    again = writer_for(tmp_path, embedder).sync(bundled_documents)
    assert not again.changed and again.reader.version == first.reader.version
    assert embedder.embedded == []
    assert len(list((tmp_path / "commits").iterdir())) == 1


def test_an_add_writes_one_small_segment_and_embeds_only_its_text(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer_for(tmp_path).sync(bundled_documents)
    before = {p.name for p in (tmp_path / "segments").iterdir()}
    embedder = CountingEmbedder()
    extra = Document(id="extra", title="Extra", text="A brand new article about Gwadar port.")
    result = writer_for(tmp_path, embedder).upsert([extra])
    assert result.changed and result.added == ["extra"]
    assert embedder.embedded == [
        "Extra\nA brand new article about Gwadar port.",
        "A brand new article about Gwadar port.",
    ]
    after = {p.name for p in (tmp_path / "segments").iterdir()}
    assert before < after and len(after - before) == 1  # the old segment is untouched
    [new] = after - before
    assert json.loads((tmp_path / "segments" / new / "meta.json").read_text())["documents"] == 1


def test_a_replace_is_a_new_segment_and_a_deletion(tmp_path: Path, bundled_documents: list[Document]) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    original = next(d for d in bundled_documents if d.id == "nournews-larijani-visit")
    edited = Document(**{**original.to_dict(), "text": original.text + " One more sentence."})
    embedder = CountingEmbedder()
    result = writer_for(tmp_path, embedder).upsert([edited])
    assert result.replaced == [edited.id]
    # Unchanged passages of the replaced document are not embedded again.
    assert len(embedder.embedded) < 6
    first, second = result.reader.commit.segments
    assert first.deleted == 1 and first.deletes and second.documents == 1
    assert result.reader.document(edited.id) == edited and result.reader.document_count == 3
    removed = writer.delete([edited.id])
    assert removed.reader.document(edited.id) is None and removed.reader.document_count == 2
    assert [e.name for e in removed.reader.commit.segments] == [first.name]  # an emptied segment leaves


def test_a_delete_of_an_unknown_id_changes_nothing(tmp_path: Path, bundled_documents: list[Document]) -> None:
    from index.writer import MissingDocumentsError

    writer = writer_for(tmp_path)
    version = writer.sync(bundled_documents).reader.version
    with pytest.raises(MissingDocumentsError, match="nope"):
        writer.delete(["nournews-larijani-visit", "nope"])
    assert IndexReader.open(IndexStore(tmp_path)).version == version


def test_model_mismatch_is_refused_by_writes_and_rebuilt_by_a_build(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer_for(tmp_path).sync(bundled_documents)
    writer_for(tmp_path).upsert([Document(id="over-http", text="Added over HTTP.")])

    class OtherModel(CountingEmbedder):
        model_name = "another-model"

    with pytest.raises(IndexMismatchError, match="built with model 'hashing-fake'"):
        writer_for(tmp_path, OtherModel()).upsert([Document(id="x", text="Text.")])
    # A build re-embeds every document the index holds with the configured model instead.
    other = OtherModel()
    rebuilt = writer_for(tmp_path, other).sync(bundled_documents)
    assert rebuilt.reader.model_name == "another-model" and rebuilt.reader.document_count == 4
    assert "Added over HTTP." in other.embedded and rebuilt.kept == ["over-http"]


@pytest.mark.parametrize("victim", ["documents.jsonl", "chunk_vectors.npy", "meta.json", "terms.json"])
def test_damaged_segment_files_are_detected(
    tmp_path: Path, bundled_documents: list[Document], victim: str
) -> None:
    reader = writer_for(tmp_path).sync(bundled_documents).reader
    path = reader.segments[0].directory / victim
    path.write_bytes(path.read_bytes()[:-10] + b"garbage!!!")
    with pytest.raises(IndexCorruptError, match=r"damaged|cannot"):
        IndexReader.open(IndexStore(tmp_path))
    path.unlink()
    with pytest.raises(DamagedIndexError, match=r"missing|cannot"):
        IndexReader.open(IndexStore(tmp_path))


def test_damaged_deletes_file_is_detected(tmp_path: Path, bundled_documents: list[Document]) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    reader = writer.delete(["nournews-larijani-visit"]).reader
    path = tmp_path / "deletes" / str(reader.commit.segments[0].deletes)
    np.save(path, np.array([0, 1, 2]))
    with pytest.raises(DamagedIndexError, match="checksum"):
        IndexReader.open(IndexStore(tmp_path))


def test_crash_before_the_switch_leaves_the_last_good_commit(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = writer_for(tmp_path)
    good = writer.sync(bundled_documents).reader.version

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(IndexStore, "_switch_current", crash)
    with pytest.raises(OSError, match="disk full"):
        writer.upsert([Document(id="new", text="New text.")])
    monkeypatch.undo()
    reader = IndexReader.open(IndexStore(tmp_path))
    assert reader.version == good and reader.document("new") is None
    # What the failed commit left (its segment, its commit point) goes with the next commit.
    writer.upsert([Document(id="new", text="New text.")])
    reader = IndexReader.open(IndexStore(tmp_path))
    assert {p.name for p in (tmp_path / "segments").iterdir()} == {e.name for e in reader.commit.segments}


def test_old_commits_and_unused_files_are_cleaned(tmp_path: Path, bundled_documents: list[Document]) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    for number in range(4):
        writer.upsert([Document(id=f"d{number}", text=f"Text {number}.")])
        writer.delete([f"d{number}"])
    commits = sorted(p.name for p in (tmp_path / "commits").iterdir())
    assert len(commits) == 2 and IndexStore(tmp_path).current_name() == commits[-1]
    live = IndexReader.open(IndexStore(tmp_path))
    previous = IndexStore(tmp_path).read_commit(commits[0])
    kept = {e.name for e in live.commit.segments} | {e.name for e in previous.segments}
    assert {p.name for p in (tmp_path / "segments").iterdir()} == kept


def test_force_rebuilds_and_reembeds_everything(tmp_path: Path, bundled_documents: list[Document]) -> None:
    first = writer_for(tmp_path).sync(bundled_documents)
    embedder = CountingEmbedder()
    forced = writer_for(tmp_path, embedder).sync(bundled_documents, force=True)
    assert forced.changed and forced.reader.version != first.reader.version
    fresh = CountingEmbedder()
    writer_for(tmp_path / "fresh", fresh).sync(bundled_documents)
    assert sorted(embedder.embedded) == sorted(fresh.embedded)  # nothing reused


def test_question_sentences_are_marked_at_build_and_stored(tmp_path: Path) -> None:
    interview = Document(
        id="interview",
        title="Interview",
        text='What did the minister say? He said the port opens in 2027. "Will it pay off?" Time will tell.',
    )
    writer_for(tmp_path).sync([interview])
    reader = IndexReader.open(IndexStore(tmp_path))
    marked = [
        interview.text[sentence.start : sentence.end]
        for row in range(reader.chunk_count)
        for sentence in reader.sentences(row)
        if sentence.is_question
    ]
    assert marked == ["What did the minister say?", '"Will it pay off?"']
