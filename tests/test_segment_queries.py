"""How a reader searches across segments: one scan of every exact segment, BM25 in blocks of
consecutive segments, ties broken by row, deleted chunks never returned, approximate segments
searched beside exact ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import index.search.reader
from corpus import Document
from index.embedding import HashingEmbedder
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.selection import Best, blocks, top
from index.settings import IndexSettings
from index.storage.arrays import contenders
from index.storage.postings import positive_top
from index.storage.segments import FlatVectors, IvfVectors
from index.storage.store import IndexStore
from index.storage.vectors import SEGMENT_PROBES, VectorIndexSettings
from index.text.analysis import terms as analyse
from index.write.merging import TieredMergePolicy
from index.write.writer import IndexWriter
from tests.test_segments import QUESTIONS, extra_documents, write_many_segments

NEVER_MERGE = TieredMergePolicy(segments_per_tier=1_000)

BM25 = (RetrievalOptions().bm25_k1, RetrievalOptions().bm25_b)


def test_blocks_are_consecutive_runs_within_the_size() -> None:
    assert blocks([5, 5, 20, 3, 3, 4], 10) == [(0, 2), (2, 3), (3, 6)]
    assert blocks([11], 10) == [(0, 1)]
    assert blocks([1, 1, 1], 2) == [(0, 2), (2, 3)]
    assert blocks([], 10) == []


def test_top_breaks_ties_by_row_and_keeps_every_tied_contender() -> None:
    rows = [np.array([9, 1, 4]), np.array([7, 2])]
    scores = [np.array([0.9, 0.5, 0.7], np.float32), np.array([0.9, 0.7], np.float32)]
    assert top(rows, scores, 3) == ([7, 9, 2], pytest.approx([0.9, 0.9, 0.7]))
    assert top(rows, scores, 10)[0] == [7, 9, 2, 4, 1]
    assert top([], [], 3) == ([], [])
    # The third best is 0.7, held twice: both are contenders, the row decides later.
    assert sorted(contenders(np.array([0.9, 0.5, 0.7, 0.9, 0.7], np.float32), 3).tolist()) == [0, 2, 3, 4]
    assert contenders(np.array([0.1, 0.2], np.float32), 0).tolist() == []


def test_a_floor_from_earlier_blocks_leaves_the_top_unchanged() -> None:
    """`Best.floor` lets a block skip what cannot make the top: the result is that of every
    block's full candidates, with ties (as float32, the ranked type) and zeros in play."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        # Scores on a coarse grid (ties), some a hair below a grid value: the same float32.
        blocks_ = [
            np.round(rng.random(60) * 8) / 8 - rng.choice([0.0, 1e-12], 60) * (rng.random(60) < 0.5)
            for _ in range(4)
        ]
        limit = int(rng.integers(1, 12))
        best, rows, scores = Best(limit), [], []
        for number, block in enumerate(blocks_):
            local, values = positive_top(block, limit, best.floor)
            best.add(local + 100 * number, values.astype(np.float32))
            local, values = positive_top(block, limit)
            rows.append(local + 100 * number)
            scores.append(values.astype(np.float32))
        assert best.result() == top(rows, scores, limit)


@pytest.mark.parametrize("block_chunks", [1, 40, 65_536])
def test_bm25_in_blocks_of_any_size_equals_one_segment(
    bundled_documents: list[Document], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_chunks: int
) -> None:
    many_segments = write_many_segments(tmp_path / "many", bundled_documents)
    merged = tmp_path / "merged"
    shutil.copytree(many_segments, merged)
    IndexWriter(IndexStore(merged), HashingEmbedder(), settings=IndexSettings()).merge(force=True)
    monkeypatch.setattr(index.search.reader, "SCORING_BLOCK_CHUNKS", block_chunks)
    split, whole = (IndexReader.open(IndexStore(root)) for root in (many_segments, merged))
    expected_blocks = {1: len(split.segments), 40: 2, 65_536: 1}[block_chunks]
    assert len(split.scoring_blocks) == expected_blocks, [s.chunk_count for s in split.segments]
    for question in [*QUESTIONS, "report pipeline pipeline port"]:
        terms = analyse(question)
        rows, scores = split.lexical_search(terms, 30, *BM25)
        whole_rows, whole_scores = whole.lexical_search(terms, 30, *BM25)
        # Rows differ between the two (deleted chunks keep rows in the split index): compare chunks.
        assert [split.chunk(row).id for row in rows] == [whole.chunk(row).id for row in whole_rows]
        np.testing.assert_allclose(scores, whole_scores, atol=1e-9)


def twins(count: int) -> list[Document]:
    return [
        Document(id=f"twin-{n:02d}", title="Twin", text="The same report on the port.") for n in range(count)
    ]


def test_ties_go_to_the_lower_row_and_deleted_chunks_never_come_out(tmp_path: Path) -> None:
    writer = IndexWriter(
        IndexStore(tmp_path), HashingEmbedder(), settings=IndexSettings(), merge_policy=NEVER_MERGE
    )
    documents = twins(12)
    for begin in range(0, 12, 3):
        writer.upsert(documents[begin : begin + 3])
    writer.delete(["twin-00", "twin-04"])
    reader = IndexReader.open(IndexStore(tmp_path))
    assert len(reader.segments) == 4
    query = HashingEmbedder().embed_batch(["The same report on the port."])[0]
    rows, scores = reader.dense_search(query, 5)
    assert [reader.document_id_of(row) for row in rows] == [
        "twin-01",
        "twin-02",
        "twin-03",
        "twin-05",
        "twin-06",
    ]
    assert rows == sorted(rows) and len(set(scores)) == 1
    lexical, lexical_scores = reader.lexical_search(analyse("the same report on the port"), 5, *BM25)
    assert lexical == rows and len(set(lexical_scores)) == 1
    everything, _ = reader.dense_search(query, 100)
    assert sorted(reader.document_id_of(row) for row in everything) == [
        f"twin-{n:02d}" for n in range(12) if n not in (0, 4)
    ]


def test_exact_and_approximate_segments_are_searched_together(tmp_path: Path) -> None:
    settings = IndexSettings(vectors=VectorIndexSettings(approximate_threshold=40))
    writer = IndexWriter(IndexStore(tmp_path), HashingEmbedder(), settings=settings, merge_policy=NEVER_MERGE)
    writer.upsert(extra_documents(60))  # enough chunks for an IVF index
    writer.upsert(twins(3))
    writer.upsert([Document(id="late", title="Late", text="A late bulletin on the wheat harvest.")])
    writer.delete(["extra-005", "twin-01"])
    reader = IndexReader.open(IndexStore(tmp_path))
    kinds = [type(segment.vectors) for segment in reader.segments]
    assert kinds == [IvfVectors, FlatVectors, FlatVectors]
    for question in ["The same report on the port.", "wheat harvest", "Report 5 on the rail talks"]:
        query = HashingEmbedder().embed_batch([question])[0]
        rows, scores = reader.dense_search(query, 10)
        found = [reader.document_id_of(row) for row in rows]
        assert "extra-005" not in found and "twin-01" not in found
        assert scores == sorted(scores, reverse=True)
        np.testing.assert_allclose(scores, reader.chunk_vectors(rows) @ query, atol=1e-5)
    rows, _ = reader.dense_search(
        HashingEmbedder().embed_batch(["A late bulletin on the wheat harvest."])[0], 3
    )
    assert reader.document_id_of(rows[0]) == "late"
    rows, _ = reader.dense_search(HashingEmbedder().embed_batch(["The same report on the port."])[0], 2)
    assert [reader.document_id_of(row) for row in rows] == ["twin-00", "twin-02"]


@pytest.mark.parametrize("nprobe", [0, 40])
def test_an_ivf_segment_beside_others_probes_fewer_cells_unless_its_settings_say(
    tmp_path: Path, nprobe: int
) -> None:
    vectors = VectorIndexSettings(approximate_threshold=200, ivf_lists=64, ivf_nprobe=nprobe)
    writer = IndexWriter(
        IndexStore(tmp_path),
        HashingEmbedder(),
        settings=IndexSettings(vectors=vectors),
        merge_policy=NEVER_MERGE,
    )
    writer.upsert(extra_documents(200))
    alone = IndexReader.open(IndexStore(tmp_path))
    assert [type(segment.vectors) for segment in alone.segments] == [IvfVectors]
    own = alone.segments[0].vectors
    assert isinstance(own, IvfVectors) and own.probes == (nprobe or 48)
    assert alone.approximate[0][1].probes == own.probes
    writer.upsert(twins(3))
    beside = IndexReader.open(IndexStore(tmp_path), alone)
    assert beside.approximate[0][1].probes == (nprobe or SEGMENT_PROBES)
    query = HashingEmbedder().embed_batch(["Report 5 on the rail talks"])[0]
    rows, scores = beside.dense_search(query, 10)
    np.testing.assert_allclose(scores, beside.chunk_vectors(rows) @ query, atol=1e-5)
