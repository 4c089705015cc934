"""A build embedded on a real local Ray cluster (head + worker node processes) ranks exactly as
one built on this machine alone; bad addresses and storage paths stop before anything is written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corpus import Document
from index.cluster.connect import StorageUnreachableError, check_storage, connected
from index.cluster.embedding import ClusterEmbedder
from index.embedding import SentenceTransformerEmbedder
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.writer import build_index
from service.cli import cli as rag
from service.cluster.local import LocalCluster
from service.config import get_settings
from tests.conftest import BUNDLED_CORPUS
from tests.live_server import free_port

pytestmark = pytest.mark.cluster

QUESTIONS = [
    "what projects could Larijani's visit accelerate?",
    "who wrote about an Iran-Pakistan defence pact?",
    "security cooperation on the border",
    "ALDH1 expression is associated with poorer prognosis in breast cancer",
    "vitamin D deficiency and risk of fractures",
    "how do stem cells differentiate?",
    "the effect of smoking on lung function",
    "antibiotic resistance in bacteria",
]


def test_a_cluster_build_ranks_as_one_machine(
    local_cluster: LocalCluster,
    tmp_path: Path,
    real_embedder: SentenceTransformerEmbedder,
    bundled_documents: list[Document],
    scifact_documents: list[Document],
) -> None:
    documents = bundled_documents + scifact_documents
    settings = IndexSettings()
    alone = build_index(tmp_path / "alone", documents, real_embedder, settings=settings)
    with connected(local_cluster.address):
        check_storage(tmp_path / "cluster")
        embedder = ClusterEmbedder(documents, None, settings, actors=2)
        build_index(tmp_path / "cluster", documents, embedder, settings=settings)
    assert len(embedder.nodes) == 2, "both nodes' actors embedded"
    reopened = IndexReader.open(IndexStore(tmp_path / "cluster"))  # an ordinary index on disk
    assert reopened.document_count == alone.document_count == len(documents)
    assert reopened.chunk_count == alone.chunk_count
    difference = [
        np.abs(a.chunk_vectors(np.arange(a.chunk_count)) - b.chunk_vectors(np.arange(b.chunk_count))).max()
        for a, b in zip(alone.segments, reopened.segments, strict=True)
    ]
    assert max(difference) < 1e-4
    options = RetrievalOptions()
    for question in QUESTIONS:
        for mode in (Mode.HYBRID, Mode.DENSE):
            expected = Retriever(alone, real_embedder, options).search(question, k=10, mode=mode)
            got = Retriever(reopened, real_embedder, options).search(question, k=10, mode=mode)
            assert [hit.chunk.id for hit in got.hits] == [hit.chunk.id for hit in expected.hits], question
            assert [hit.answer.start for hit in got.hits] == [hit.answer.start for hit in expected.hits]
            np.testing.assert_allclose(
                [hit.score for hit in got.hits], [hit.score for hit in expected.hits], atol=1e-4
            )


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_COLLECTIONS_DIR", str(tmp_path / "collections"))
    monkeypatch.setenv("RAG_CORPUS_DIRS", json.dumps([str(BUNDLED_CORPUS)]))
    monkeypatch.delenv("RAG_CLUSTER_ADDRESS", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_rag_build_cluster_writes_an_ordinary_index_and_then_does_nothing(
    local_cluster: LocalCluster, cli_env: CliRunner, tmp_path: Path, bundled_documents: list[Document]
) -> None:
    first = cli_env.invoke(rag, ["build", "--cluster", local_cluster.address])
    assert first.exit_code == 0, first.output
    assert f"embedded on the cluster at {local_cluster.address}" in first.output
    reader = IndexReader.open(IndexStore(tmp_path / "index"))
    assert sorted(d.id for d in reader.documents()) == sorted(d.id for d in bundled_documents)
    again = cli_env.invoke(rag, ["build", "--cluster", local_cluster.address])
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output and "embedded on the cluster" not in again.output


@pytest.mark.parametrize("address", ["127.0.0.1:{free}", "no-port-here"])
def test_an_unreachable_address_is_an_error_and_writes_nothing(
    cli_env: CliRunner, tmp_path: Path, address: str
) -> None:
    result = cli_env.invoke(rag, ["build", "--cluster", address.format(free=free_port())])
    assert result.exit_code == 1
    assert "cannot reach the Ray cluster" in result.output and "nothing was built" in result.output
    assert not (tmp_path / "index").exists()


def test_a_storage_path_a_node_cannot_reach_is_an_error_and_writes_nothing(
    local_cluster: LocalCluster, cli_env: CliRunner, driver_only_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(driver_only_dir / "index"))
    get_settings.cache_clear()
    result = cli_env.invoke(rag, ["build", "--cluster", local_cluster.address])
    assert result.exit_code == 1
    assert "not the same writable directory on every node" in result.output
    assert len(re.findall(r"node [0-9a-f]{12} at", result.output)) == 1, "names the node that cannot"
    assert list(driver_only_dir.iterdir()) == []  # no index, no probe file left
    with connected(local_cluster.address):
        check_storage(driver_only_dir.parent)  # a path every node reaches passes
        with pytest.raises(StorageUnreachableError):
            check_storage(driver_only_dir)
