"""The index directory: segments and commit points, checks on load, what each write costs."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.embedding import HashingEmbedder
from index.errors import DamagedIndexError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.storage.commits import CommitPoint
from index.storage.store import IndexStore
from index.write.writer import IndexWriter
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
    from index.write.changes import MissingDocumentsError

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


def flip_byte(path: Path, old: bytes, new: bytes) -> None:
    """Replace the one occurrence of `old` in `path` by `new` (as damage would, in place)."""
    data = path.read_bytes()
    assert data.count(old) == 1, (path, old)
    path.write_bytes(data.replace(old, new))


EXTRA = Document(id="extra", title="Extra", text="A new article about the Gwadar port.")


def with_an_added_document(root: Path, documents: list[Document]) -> tuple[IndexWriter, CommitPoint]:
    """`documents` built, then EXTRA added (a segment of its own): the writer and the live commit."""
    writer = writer_for(root)
    writer.sync(documents)
    commit = writer.upsert([EXTRA]).reader.commit
    return writer, commit


def test_a_flipped_byte_in_the_commit_point_is_caught(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer, commit = with_an_added_document(tmp_path, bundled_documents)
    path = tmp_path / "commits" / commit.file_name
    # The reported damage: the new segment's `documents: 1` read as 0, so a writer dropped it.
    flip_byte(path, b'"documents": 1,', b'"documents": 0,')
    with pytest.raises(DamagedIndexError, match=rf"{path}.*checksum mismatch"):
        IndexReader.open(IndexStore(tmp_path))
    with pytest.raises(IndexCorruptError, match="Nothing was changed"):
        writer.upsert([Document(id="later", text="A later article.")])


@pytest.mark.parametrize("damage", ["older commit named", "checksum flipped"])
def test_a_flipped_byte_in_current_is_caught(
    tmp_path: Path, bundled_documents: list[Document], damage: str
) -> None:
    writer = writer_for(tmp_path)
    writer.sync(bundled_documents)
    writer.delete(["nournews-larijani-visit"])
    current = tmp_path / "CURRENT"
    name, checksum = current.read_text().split()
    assert name == "0000000002.json" and (tmp_path / "commits" / "0000000001.json").is_file()
    if damage == "older commit named":  # '2' -> '1': one bit, and a commit point that exists
        flip_byte(current, b"0000000002.json", b"0000000001.json")
    else:
        flip_byte(
            current, checksum.encode(), checksum[:-1].encode() + (b"0" if checksum[-1] != "0" else b"1")
        )
    with pytest.raises(DamagedIndexError, match=rf"{current} is damaged"):
        IndexReader.open(IndexStore(tmp_path))


def test_counts_that_do_not_match_the_segment_are_caught(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    """A commit point with a valid checksum but a wrong count (written by a faulty writer)."""
    writer, commit = with_an_added_document(tmp_path, bundled_documents)
    first, second = commit.segments
    wrong = replace(commit, segments=(first, replace(second, documents=0)))
    path = tmp_path / "commits" / commit.file_name
    checksum = wrong.write(path)
    (tmp_path / "CURRENT").write_text(f"{commit.file_name} {checksum}\n")
    with pytest.raises(
        DamagedIndexError, match=rf"commit point {path} is damaged: it lists segment {second.name}"
    ):
        IndexReader.open(IndexStore(tmp_path))
    with pytest.raises(IndexCorruptError, match="Nothing was changed"):
        writer.upsert([Document(id="later", text="A later article.")])


def test_an_index_of_the_previous_format_loads_and_a_write_upgrades_it(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    writer = writer_for(tmp_path)
    before = writer.sync(bundled_documents).reader
    store = IndexStore(tmp_path)
    commit = store.current()
    assert commit is not None
    # As the previous release wrote it: a format-2 commit point and segment meta without
    # checksums, and CURRENT holding only the commit point's name.
    old_commit = {**commit.to_dict(), "format": 2}
    (tmp_path / "commits" / commit.file_name).write_text(json.dumps(old_commit, indent=1))
    meta_path = before.segments[0].directory / "meta.json"
    meta = {k: v for k, v in json.loads(meta_path.read_text()).items() if k != "checksum"}
    meta_path.write_text(json.dumps({**meta, "format": 2}, indent=2))
    (tmp_path / "CURRENT").write_text(commit.file_name)
    reader = IndexReader.open(IndexStore(tmp_path))
    assert reader.version == before.version
    assert sorted(reader.documents(), key=lambda d: d.id) == sorted(bundled_documents, key=lambda d: d.id)
    upgraded = writer_for(tmp_path).upsert([Document(id="extra", text="One more article.")]).reader
    name, checksum = (tmp_path / "CURRENT").read_text().split()
    written = json.loads((tmp_path / "commits" / name).read_text())
    assert written["format"] == 3 and "checksum" in written and len(checksum) == 64
    assert upgraded.document_count == 4 and IndexReader.open(IndexStore(tmp_path)).document("extra")


def test_a_reader_re_uses_the_views_of_what_did_not_change(tmp_path: Path) -> None:
    writer = writer_for(tmp_path)
    first = writer.upsert([Document(id=f"a{n}", text=f"Article {n} on the port.") for n in range(3)]).reader
    second = writer.upsert([Document(id="b", text="Another article.")], live=first).reader
    assert second.views[0] is first.views[0]
    third = writer.delete(["a1"], live=second).reader
    assert third.views[1] is second.views[1] and third.views[0] is not second.views[0]
    assert third.document("a1") is None and third.document("a0") is not None
    fresh = IndexReader.open(IndexStore(tmp_path))
    assert fresh.views[1] is not third.views[1]
    assert IndexReader.open(IndexStore(tmp_path), third).views == third.views


def test_a_snapshot_that_fails_half_way_leaves_nothing(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.storage.store

    writer_for(tmp_path).sync(bundled_documents)
    store = IndexStore(tmp_path)
    links, real_link = [], os.link

    def link_then_fail(source: Path, destination: Path) -> None:
        if links:
            raise OSError("too many links")
        links.append(destination)
        real_link(source, destination)

    monkeypatch.setattr(index.storage.store.os, "link", link_then_fail)
    with pytest.raises(OSError, match="too many links"):
        store.snapshot("kept")
    monkeypatch.undo()
    assert len(links) == 1 and list((tmp_path / "snapshots").iterdir()) == []
    assert store.snapshot("kept").documents == 3 and store.snapshot_names() == ["kept"]
