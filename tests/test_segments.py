"""Segments: a many-segment index answers exactly as its force-merged copy; merges lose nothing,
never hold the write lock while they compute, and carry over deletes made meanwhile; the policy."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.embedding import HashingEmbedder
from index.search.document_ranking import search_documents
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever, SearchOutcome
from index.settings import IndexSettings
from index.storage.commits import SegmentEntry
from index.storage.store import IndexStore
from index.write.merging import TieredMergePolicy
from index.write.writer import IndexWriter

QUESTIONS = [
    "what projects could Larijani's visit accelerate?",
    "security cooperation along the border",
    "trade volume target between Iran and Pakistan",
    "Gwadar port berths and shipping",
    "How many cooperation documents were signed?",
    "wheat exports harvest",
    "zebra quantum lasagna",
]


def extra_documents(count: int) -> list[Document]:
    topics = ["port", "pipeline", "border", "trade", "energy", "rail", "wheat", "summit", "bank", "visa"]
    return [
        Document(
            id=f"extra-{n:03d}",
            title=f"Bulletin {n}",
            text=" ".join(
                f"Report {n} on the {topics[(n + i) % 10]} talks: officials in Gwadar logged {n * i} items."
                for i in range(1 + n % 7)
            ),
        )
        for n in range(count)
    ]


def writer_for(root: Path, **options: object) -> IndexWriter:
    return IndexWriter(IndexStore(root), HashingEmbedder(), settings=IndexSettings(), **options)  # type: ignore[arg-type]


@pytest.fixture
def many_segments(tmp_path: Path, bundled_documents: list[Document]) -> Path:
    return write_many_segments(tmp_path / "many", bundled_documents)


def write_many_segments(root: Path, bundled_documents: list[Document]) -> Path:
    """An index written as many small commits: several segments, deletes and replacements."""
    documents = [*bundled_documents, *extra_documents(40)]
    writer = writer_for(root)
    for begin in range(0, len(documents), 6):
        writer.upsert(documents[begin : begin + 6])
    writer.delete(["extra-003", "extra-017", "thepenpk-defence-pact"])
    writer.upsert([Document(id="extra-010", title="Bulletin 10", text="A corrected report on the pipeline.")])
    assert len(IndexReader.open(IndexStore(root)).segments) >= 6
    return root


def outcomes(root: Path) -> dict[tuple[str, Mode], SearchOutcome]:
    reader = IndexReader.open(IndexStore(root))
    retriever = Retriever(reader, HashingEmbedder(), RetrievalOptions())
    return {(q, mode): retriever.search(q, k=8, mode=mode) for q in QUESTIONS for mode in Mode}


def comparable(outcome: SearchOutcome) -> list[tuple[object, ...]]:
    return [
        (hit.chunk.id, hit.answer.start, hit.answer.end, hit.explain.dense_rank, hit.explain.bm25_rank)
        for hit in outcome.hits
    ]


def test_many_segments_answer_as_their_merged_copy(many_segments: Path, tmp_path: Path) -> None:
    merged = tmp_path / "merged"
    shutil.copytree(many_segments, merged)
    assert len(writer_for(merged).merge(force=True).results) == 1
    assert len(IndexReader.open(IndexStore(merged)).segments) == 1
    split, whole = outcomes(many_segments), outcomes(merged)
    for key, outcome in split.items():
        other = whole[key]
        assert comparable(outcome) == comparable(other), key
        np.testing.assert_allclose([h.score for h in outcome.hits], [h.score for h in other.hits], atol=1e-5)
        np.testing.assert_allclose(
            [h.explain.dense_score for h in outcome.hits],
            [h.explain.dense_score for h in other.hits],
            atol=1e-5,
        )
        bm25 = [h.explain.bm25_score or 0.0 for h in outcome.hits]
        np.testing.assert_allclose(bm25, [h.explain.bm25_score or 0.0 for h in other.hits], atol=1e-5)
        assert (outcome.answerable, round(outcome.confidence, 5)) == (
            other.answerable,
            round(other.confidence, 5),
        )
    readers = [IndexReader.open(IndexStore(root)) for root in (many_segments, merged)]
    retrievers = [Retriever(reader, HashingEmbedder(), RetrievalOptions()) for reader in readers]
    for question in QUESTIONS:
        vector = HashingEmbedder().embed_batch([question])[0]
        for feedback in (False, True):
            documents = [search_documents(r, question, vector, 10, feedback) for r in retrievers]
            assert [(h.document.id, h.passage.id, h.answer.start) for h in documents[0].hits] == [
                (h.document.id, h.passage.id, h.answer.start) for h in documents[1].hits
            ]
            np.testing.assert_allclose(
                [h.score for h in documents[0].hits], [h.score for h in documents[1].hits], atol=1e-5
            )
    assert readers[0].document_count == readers[1].document_count == 3 + 40 - 3
    assert readers[0].idf(["pipelin", "port"]) == pytest.approx(readers[1].idf(["pipelin", "port"]))


def test_a_merge_copies_vectors_and_never_embeds(many_segments: Path) -> None:
    from tests.conftest import CountingEmbedder

    embedder = CountingEmbedder()
    before = IndexReader.open(IndexStore(many_segments))
    vectors = {before.chunk(row).id: before.chunk_vectors([row])[0] for row in range(int(before.bases[-1]))}
    IndexWriter(IndexStore(many_segments), embedder, settings=IndexSettings()).merge(force=True)
    assert embedder.embedded == []
    after = IndexReader.open(IndexStore(many_segments))
    for row in range(after.chunk_count):
        np.testing.assert_array_equal(after.chunk_vectors([row])[0], vectors[after.chunk(row).id])
    assert not any(entry.deleted for entry in after.commit.segments)  # deleted documents dropped


def test_a_delete_that_lands_during_a_merge_is_kept(
    many_segments: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = writer_for(many_segments)
    original = IndexWriter._stage_merge

    def stage_while_others_write(self: IndexWriter, *args: object) -> object:
        staged = original(self, *args)  # type: ignore[arg-type]
        # Another writer commits while the merge has staged its segment but not committed it.
        writer_for(many_segments).delete(["extra-020", "nournews-larijani-visit"])
        writer_for(many_segments).upsert([Document(id="late", text="A late dispatch on rail freight.")])
        return staged

    monkeypatch.setattr(IndexWriter, "_stage_merge", stage_while_others_write)
    [result] = writer.merge(force=True).results
    reader = IndexReader.open(IndexStore(many_segments))
    assert reader.document("extra-020") is None and reader.document("nournews-larijani-visit") is None
    assert reader.document("late") is not None and reader.document("extra-021") is not None
    merged = next(entry for entry in reader.commit.segments if entry.name == result.segment)
    assert merged.deleted == 2  # carried over to the merged segment's rows


def test_a_merge_holds_no_lock_while_it_computes(
    many_segments: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computing, resume = threading.Event(), threading.Event()
    original = IndexWriter._stage_merge

    def slow_stage(self: IndexWriter, *args: object) -> object:
        computing.set()
        resume.wait(30)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(IndexWriter, "_stage_merge", slow_stage)
    merging = threading.Thread(target=lambda: writer_for(many_segments).merge(force=True))
    merging.start()
    assert computing.wait(30)
    # While the merge computes: a write commits (the lock is free) and a reader answers.
    written = writer_for(many_segments).upsert([Document(id="during", text="Written during a merge.")])
    assert written.changed and IndexReader.open(IndexStore(many_segments)).document("during") is not None
    resume.set()
    merging.join(60)
    reader = IndexReader.open(IndexStore(many_segments))
    assert reader.document("during") is not None and reader.document_count == 41


def test_policy_allowed_segments_and_merges() -> None:
    policy = TieredMergePolicy(segments_per_tier=10, max_merge_at_once=10, floor_segment_chunks=100)
    # 2,500 chunks: tier 1 holds 10 x 100, tier 2 (1,000 each) the other 1,500: 10 + 2 places.
    assert policy.allowed_segments(2_500) == 12
    assert policy.allowed_segments(450) == 5
    equal = [SegmentEntry(f"s{i:02d}", 10, 100) for i in range(12)]
    [group] = policy.find_merges(equal)
    assert len(group) == 10  # equal sizes: one full merge brings 12 down to 3
    assert policy.find_merges(equal[:5]) == []
    # A segment with most documents deleted is rewritten on its own.
    heavy = [SegmentEntry("big", 100, 5_000, "d", 80), SegmentEntry("small", 10, 100)]
    assert policy.find_merges(heavy) == [["big"]]
    # Segments at half the largest merged size or more are left alone.
    huge = TieredMergePolicy(floor_segment_chunks=1, max_merged_segment_chunks=1_000, segments_per_tier=2)
    entries = [SegmentEntry("h1", 10, 600), SegmentEntry("h2", 10, 600), SegmentEntry("h3", 10, 600)]
    assert huge.find_merges(entries) == []


def test_segment_count_stays_bounded_under_a_stream_of_adds(tmp_path: Path) -> None:
    writer = writer_for(tmp_path, merge_policy=TieredMergePolicy(floor_segment_chunks=10))
    counts = []
    for number, document in enumerate(extra_documents(60)):
        writer.upsert([document])
        writer.merge()
        counts.append(len(IndexReader.open(IndexStore(tmp_path)).segments))
        assert number < 5 or counts[-1] <= 12
    reader = IndexReader.open(IndexStore(tmp_path))
    assert reader.document_count == 60 and max(counts) <= 12


def test_a_restore_during_a_merge_is_not_undone_by_it(
    many_segments: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(many_segments)
    with store.write_lock():
        store.snapshot("before-delete")
    writer_for(many_segments).delete(["extra-030"])
    original = IndexWriter._stage_merge

    def stage_then_restore(self: IndexWriter, *args: object) -> object:
        staged = original(self, *args)  # type: ignore[arg-type]
        if not restored:
            restored.append(True)
            writer_for(many_segments).restore("before-delete")  # brings extra-030 back under the merge
        return staged

    restored: list[bool] = []
    monkeypatch.setattr(IndexWriter, "_stage_merge", stage_then_restore)
    writer_for(many_segments).merge(force=True)
    reader = IndexReader.open(IndexStore(many_segments))
    assert restored and reader.document("extra-030") is not None
    assert len(reader.segments) == 1  # the stale merge was dropped and done again on the restore


def test_ensure_commit_gives_a_new_index_an_empty_first_commit_and_leaves_others_alone(
    tmp_path: Path,
) -> None:
    store = IndexStore(tmp_path / "index")
    writer = IndexWriter(store, HashingEmbedder(), settings=IndexSettings())
    assert store.current() is None
    reader = writer.ensure_commit()
    first = store.current()
    assert first is not None and first.segments == () and first.generation == 1
    assert (reader.document_count, reader.chunk_count) == (0, 0)
    assert reader.version == IndexReader.open(store).version
    assert writer.ensure_commit().version == reader.version and store.current() == first

    writer.upsert([Document(id="a", text="A dispatch from the harbour.")])
    written = store.current_name()
    assert writer.ensure_commit().document_count == 1 and store.current_name() == written
