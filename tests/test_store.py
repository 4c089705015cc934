"""The on-disk index: atomic generations, checks on load, no-op and incremental builds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.building import IndexSettings
from index.embedding import HashingEmbedder
from index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.store import IndexStore
from index.updates import remove_documents, sync_corpus, upsert_documents
from tests.conftest import CountingEmbedder


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag build"):
        IndexStore(tmp_path).load()


def test_build_then_load_round_trip(tmp_path: Path, bundled_documents: list[Document]) -> None:
    store = IndexStore(tmp_path)
    result = sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings())
    loaded = store.load("hashing-fake", 64)
    assert loaded.version == result.index.version == store.current_version()
    manifest = loaded.manifest
    assert manifest["model"] == {"name": "hashing-fake", "dimension": 64}
    assert manifest["settings"]["chunker"] == {
        "chunk_size": 200,
        "chunk_overlap": 40,
        "length_unit": "word-pieces",
    }
    assert manifest["documents"] == 3 and manifest["chunks"] == len(loaded.data.chunks)
    assert set(manifest["files"]) >= {"faiss.index", "chunks.jsonl", "documents.jsonl", "chunk_vectors.npy"}
    assert manifest["corpus_fingerprint"] and manifest["created_at"] and manifest["index_version"]
    assert loaded.data.chunks == result.index.data.chunks
    assert (loaded.data.chunk_vectors == result.index.data.chunk_vectors).all()


def test_unchanged_corpus_is_a_no_op(tmp_path: Path, bundled_documents: list[Document]) -> None:
    store = IndexStore(tmp_path)
    first = sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings())
    embedder = CountingEmbedder()
    again = sync_corpus(store, bundled_documents, embedder, IndexSettings())
    assert not again.changed
    assert again.index.version == first.index.version
    assert embedder.embedded == []
    assert len(list((tmp_path / "generations").iterdir())) == 1


def test_changed_corpus_reembeds_only_new_text(tmp_path: Path, bundled_documents: list[Document]) -> None:
    store = IndexStore(tmp_path)
    sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings())
    embedder = CountingEmbedder()
    extra = Document(id="extra", title="Extra", text="A brand new article about Gwadar port.")
    result = upsert_documents(store, [extra], embedder, IndexSettings())
    assert result.changed and result.added == ["extra"]
    assert embedder.embedded == [
        "Extra\nA brand new article about Gwadar port.",
        "A brand new article about Gwadar port.",
    ]
    removed = remove_documents(store, ["extra"], CountingEmbedder(), IndexSettings())
    assert removed.removed == ["extra"] and "extra" not in store.load().data.documents


def test_model_mismatch_is_refused(tmp_path: Path, bundled_documents: list[Document]) -> None:
    store = IndexStore(tmp_path)
    sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings())
    with pytest.raises(IndexMismatchError, match="built with model 'hashing-fake'"):
        store.load("all-MiniLM-L6-v2", 384)


@pytest.mark.parametrize("victim", ["chunks.jsonl", "faiss.index", "manifest.json"])
def test_damaged_files_are_detected(tmp_path: Path, bundled_documents: list[Document], victim: str) -> None:
    store = IndexStore(tmp_path)
    version = sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings()).index.version
    path = tmp_path / "generations" / version / victim
    path.write_bytes(path.read_bytes()[:-10] + b"garbage!!!")
    with pytest.raises(IndexCorruptError, match="damaged"):
        store.load()
    path.unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        store.load()


def test_crash_before_the_switch_leaves_the_last_good_index(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(tmp_path)
    good = sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings()).index.version

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("index.store._fsync_directory", crash)
    with pytest.raises(OSError, match="disk full"):
        upsert_documents(store, [Document(id="new", text="New text.")], HashingEmbedder(), IndexSettings())
    monkeypatch.undo()
    assert store.current_version() == good
    assert "new" not in store.load().data.documents
    # The half-written staging directory is swept away by the next successful write.
    upsert_documents(store, [Document(id="new", text="New text.")], HashingEmbedder(), IndexSettings())
    assert not [p for p in (tmp_path / "generations").iterdir() if p.name.startswith(".tmp")]


def test_old_generations_are_cleaned(tmp_path: Path, bundled_documents: list[Document]) -> None:
    store = IndexStore(tmp_path)
    sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings())
    for number in range(4):
        upsert_documents(
            store, [Document(id=f"d{number}", text=f"Text {number}.")], HashingEmbedder(), IndexSettings()
        )
    names = sorted(p.name for p in (tmp_path / "generations").iterdir())
    assert len(names) == 2 and store.current_version() in names
    manifest = json.loads((tmp_path / "generations" / names[-1] / "manifest.json").read_text())
    assert manifest["documents"] == 7


def test_force_rebuilds_and_reembeds_everything(tmp_path: Path, bundled_documents: list[Document]) -> None:
    store = IndexStore(tmp_path)
    first = sync_corpus(store, bundled_documents, HashingEmbedder(), IndexSettings())
    embedder = CountingEmbedder()
    forced = sync_corpus(store, bundled_documents, embedder, IndexSettings(), force=True)
    assert forced.changed and forced.index.version != first.index.version
    fresh = CountingEmbedder()
    sync_corpus(IndexStore(tmp_path / "fresh"), bundled_documents, fresh, IndexSettings())
    assert sorted(embedder.embedded) == sorted(fresh.embedded)  # nothing reused


def test_question_sentences_are_marked_at_build_and_stored(tmp_path: Path) -> None:
    interview = Document(
        id="interview",
        title="Interview",
        text='What did the minister say? He said the port opens in 2027. "Will it pay off?" Time will tell.',
    )
    store = IndexStore(tmp_path)
    built = sync_corpus(store, [interview], HashingEmbedder(), IndexSettings()).index.data
    marked = [
        interview.text[start:end]
        for (start, end), question in zip(built.sentence_spans, built.sentence_is_question, strict=True)
        if question
    ]
    assert marked == ["What did the minister say?", '"Will it pay off?"']
    loaded = store.load("hashing-fake", 64).data
    assert loaded.sentence_is_question.tolist() == built.sentence_is_question.tolist()


def test_a_generation_without_the_stored_question_mask_still_loads(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    interview = Document(id="interview", title="Interview", text="Why now? Because the pact was signed.")
    built = sync_corpus(store, [interview], HashingEmbedder(), IndexSettings()).index
    directory = tmp_path / "generations" / built.version
    with np.load(directory / "sentences.npz") as sentences:
        older = {name: sentences[name] for name in sentences.files if name != "questions"}
    np.savez(directory / "sentences.npz", **older)  # as written before the mask was stored
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"]["sentences.npz"] = hashlib.sha256(
        (directory / "sentences.npz").read_bytes()
    ).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))
    assert store.load("hashing-fake", 64).data.sentence_is_question.tolist() == [True, False]
