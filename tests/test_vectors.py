"""The vector index: exact below the threshold, approximate (IVF or HNSW) from it, results sane."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from index.embedding import Vectors
from index.settings import IndexSettings, VectorIndexSettings
from index.storage.vectors import (
    build_vector_index,
    ivf_lists_for,
    ivf_probes_for,
    search_vectors,
    vector_index_kind,
)


def clustered_vectors(count: int, dimension: int = 32, clusters: int = 40, seed: int = 0) -> Vectors:
    """Normalised points around random centres: the kind of structure real embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dimension))
    points = centres[rng.integers(0, clusters, count)] + 0.35 * rng.standard_normal((count, dimension))
    normalised: Vectors = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    return normalised


@pytest.mark.parametrize(
    ("count", "threshold", "kind"),
    [(999, 1000, "flat"), (1000, 1000, "ivf"), (3000, 1000, "ivf"), (50, 10**6, "flat")],
)
def test_the_index_turns_approximate_exactly_at_the_threshold(count: int, threshold: int, kind: str) -> None:
    index = build_vector_index(clustered_vectors(count), VectorIndexSettings(approximate_threshold=threshold))
    assert vector_index_kind(index) == kind
    assert index.ntotal == count


def test_hnsw_is_selectable() -> None:
    settings = VectorIndexSettings(approximate_threshold=100, approximate_kind="hnsw")
    index = build_vector_index(clustered_vectors(500), settings)
    assert vector_index_kind(index) == "hnsw"
    assert isinstance(index, faiss.IndexHNSWFlat)
    assert index.hnsw.efSearch == settings.hnsw_ef_search


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_search_finds_what_exact_search_finds(kind: str) -> None:
    vectors = clustered_vectors(4000)
    queries = clustered_vectors(50, seed=1)
    exact = build_vector_index(vectors, VectorIndexSettings(approximate_threshold=10**9))
    approximate = build_vector_index(
        vectors,
        VectorIndexSettings(approximate_threshold=1000, approximate_kind=kind),  # type: ignore[arg-type]
    )
    exact_rows, exact_scores = search_vectors(exact, queries, 10)
    rows, scores = search_vectors(approximate, queries, 10)

    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_rows, rows, strict=True)])
    assert recall >= 0.9
    # Scores are real cosines, best first, and never better than the exact best.
    np.testing.assert_allclose(scores[:, 0], np.einsum("ij,ij->i", queries, vectors[rows[:, 0]]), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert (scores[:, 0] <= exact_scores[:, 0] + 1e-6).all()


def test_ivf_is_sized_from_the_data_and_survives_a_round_trip() -> None:
    vectors = clustered_vectors(6000)
    index = build_vector_index(vectors, VectorIndexSettings(approximate_threshold=1000))
    assert isinstance(index, faiss.IndexIVFFlat)
    assert index.nlist == ivf_lists_for(6000) == 128  # 2 sqrt(6000) = 155 -> 128
    assert index.nprobe == 48
    copy = faiss.deserialize_index(faiss.serialize_index(index))
    assert vector_index_kind(copy) == "ivf"
    assert isinstance(copy, faiss.IndexIVFFlat)
    assert copy.nprobe == index.nprobe
    np.testing.assert_array_equal(
        search_vectors(copy, vectors[:5], 3)[0], search_vectors(index, vectors[:5], 3)[0]
    )


def test_a_tiny_corpus_over_the_threshold_still_builds() -> None:
    vectors = clustered_vectors(12)
    index = build_vector_index(vectors, VectorIndexSettings(approximate_threshold=5))
    assert isinstance(index, faiss.IndexIVFFlat)
    assert (index.nlist, index.nprobe) == (12, 12)
    assert ivf_lists_for(10**6) == 2048
    rows, _ = search_vectors(index, vectors[:1], 3)
    assert rows[0][0] == 0


def test_ivf_probes_fewer_of_the_fuller_cells_past_a_million_chunks() -> None:
    assert (ivf_probes_for(512), ivf_probes_for(1024), ivf_probes_for(2048), ivf_probes_for(4096)) == (
        48,
        48,
        32,
        32,
    )
    vectors = clustered_vectors(3000)
    chosen = build_vector_index(vectors, VectorIndexSettings(approximate_threshold=1000, ivf_nprobe=7))
    assert isinstance(chosen, faiss.IndexIVFFlat)
    assert chosen.nprobe == 7


def test_an_empty_index_searches_to_nothing() -> None:
    index = build_vector_index(np.zeros((0, 8), dtype=np.float32), VectorIndexSettings())
    rows, scores = search_vectors(index, np.ones((1, 8), dtype=np.float32), 5)
    assert rows.shape == scores.shape == (1, 0)


def test_the_build_pipeline_switches_on_its_own_and_ranks_like_exact_search(tmp_path: Path) -> None:
    from corpus import Document
    from index.embedding import HashingEmbedder
    from index.settings import IndexSettings
    from index.write.writer import build_index

    words = [
        "pipeline",
        "port",
        "visit",
        "treaty",
        "border",
        "energy",
        "trade",
        "security",
        "summit",
        "minister",
    ]
    documents = [
        Document(id=f"d{i}", text=" ".join(words[(i + j) % 10] for j in range(30)) + f" topic{i}.")
        for i in range(40)
    ]
    embedder = HashingEmbedder()
    exact = build_index(tmp_path / "exact", documents, embedder, settings=IndexSettings())
    approximate = build_index(
        tmp_path / "ivf",
        documents,
        embedder,
        settings=IndexSettings(vectors=VectorIndexSettings(approximate_threshold=20)),
    )
    kinds = [reader.segments[0].meta["vector_index"] for reader in (exact, approximate)]
    assert kinds == ["flat", "ivf"]
    assert not (tmp_path / "ivf" / "segments" / approximate.segments[0].name / "chunk_vectors.npy").exists()
    query = embedder.embed_batch(["pipeline energy topic7"])[0]
    exact_rows, _ = exact.dense_search(query, 1)
    rows, _ = approximate.dense_search(query, 1)
    assert rows[0] == exact_rows[0]
    assert approximate.document_id_of(rows[0]) == "d7"
    # The IVF index gives the vectors back by row: the same as the exact segment stores.
    assert np.allclose(approximate.chunk_vectors(list(range(5))), exact.chunk_vectors(list(range(5))))


def test_settings_from_a_manifest_ignore_keys_this_version_does_not_know() -> None:
    recorded: dict[str, object] = {"approximate_threshold": 5000, "hnsw_m": 16, "some_future_knob": 3}
    settings = IndexSettings.from_dict({"vectors": recorded, "another_future_knob": 1}).vectors
    assert (settings.approximate_threshold, settings.hnsw_m) == (5000, 16)
    assert settings.ivf_nprobe == VectorIndexSettings().ivf_nprobe
