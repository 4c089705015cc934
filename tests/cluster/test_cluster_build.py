"""A build embedded on a real local Ray cluster (head + worker node processes) ranks exactly as
one built on this machine alone, embeds only what such a build would (nothing, when the index
holds the documents as given) and hands the vectors to the writer a segment at a time; bad
addresses and storage paths stop before anything is written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corpus import Document
from index.cluster.connect import StorageUnreachableError, check_storage, connected
from index.cluster.embedding import DOCUMENTS_PER_LAYOUT_BATCH, ClusterEmbedder
from index.embedding import SentenceTransformerEmbedder, Vectors
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.sharding.layout import ShardedLayout
from index.storage.store import IndexStore
from index.write.building import chunk_layout
from index.write.writer import IndexWriter
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


SEGMENT_DOCUMENTS = 100  # several segments, so the build streams


@dataclass
class Counting:
    """The model on this machine, counting the texts it embeds."""

    inner: SentenceTransformerEmbedder
    embedded: int = 0

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.embedded += len(texts)
        return self.inner.embed_batch(texts)


@pytest.mark.timeout(1200)  # two builds of ~360 documents (here, on the cluster) on 2 shared cores
def test_a_cluster_build_ranks_as_one_machine_streams_and_embeds_only_what_changed(
    local_cluster: LocalCluster,
    tmp_path: Path,
    real_embedder: SentenceTransformerEmbedder,
    bundled_documents: list[Document],
    scifact_documents: list[Document],
) -> None:
    documents = bundled_documents + scifact_documents
    settings = IndexSettings()
    here = Counting(real_embedder)
    alone = IndexWriter(
        IndexStore(tmp_path / "alone"), here, settings=settings, segment_documents=SEGMENT_DOCUMENTS
    )
    alone.sync(documents, exact=True)
    edited = [replace(d, text=f"{d.text} A sentence added later.") for d in documents[:2]] + documents[2:]
    edited.append(Document(id="zz-added", title="Added", text="A document added later. It is short."))
    with connected(local_cluster.address):
        check_storage(tmp_path / "cluster")
        embedder = ClusterEmbedder(None, settings, actors=2)
        writer = IndexWriter(
            IndexStore(tmp_path / "cluster"), embedder, settings=settings, segment_documents=SEGMENT_DOCUMENTS
        )
        writer.sync(documents, exact=True)
        built, peak = embedder.embedded, embedder.peak_held
        assert len(embedder.nodes) == 2, "both nodes' actors embedded"
        assert built >= here.embedded  # the same texts; a text two layout batches share, twice
        assert not writer.sync(documents, exact=True).changed
        assert embedder.embedded == built, "a build of what the index holds embeds nothing"
        here.embedded = 0
        alone.sync(edited, exact=True)
        writer.sync(edited, exact=True)
        assert embedder.embedded - built == here.embedded > 0, "only the new text, as on one machine"
    bound = _most_texts(documents, real_embedder, settings, SEGMENT_DOCUMENTS) + _most_texts(
        documents, real_embedder, settings, DOCUMENTS_PER_LAYOUT_BATCH, sliding=True
    )
    assert peak <= bound and peak < built, "the driver holds about one segment's vectors, not the build's"
    one = IndexReader.open(IndexStore(tmp_path / "alone"))
    reopened = IndexReader.open(IndexStore(tmp_path / "cluster"))  # an ordinary index on disk
    assert len(reopened.segments) == len(one.segments) > 3
    assert reopened.document_count == one.document_count == len(edited)
    assert reopened.chunk_count == one.chunk_count
    difference = [
        np.abs(a.chunk_vectors(np.arange(a.chunk_count)) - b.chunk_vectors(np.arange(b.chunk_count))).max()
        for a, b in zip(one.segments, reopened.segments, strict=True)
    ]
    assert max(difference) < 1e-4
    options = RetrievalOptions()
    for question in QUESTIONS:
        for mode in (Mode.HYBRID, Mode.DENSE):
            expected = Retriever(one, real_embedder, options).search(question, k=10, mode=mode)
            got = Retriever(reopened, real_embedder, options).search(question, k=10, mode=mode)
            assert [hit.chunk.id for hit in got.hits] == [hit.chunk.id for hit in expected.hits], question
            assert [hit.answer.start for hit in got.hits] == [hit.answer.start for hit in expected.hits]
            np.testing.assert_allclose(
                [hit.score for hit in got.hits], [hit.score for hit in expected.hits], atol=1e-4
            )


def _most_texts(
    documents: list[Document],
    embedder: SentenceTransformerEmbedder,
    settings: IndexSettings,
    size: int,
    sliding: bool = False,
) -> int:
    """The most texts `size` documents of the build's order lay out: per segment, or (sliding)
    any run of them (what one pipeline task embeds)."""
    ordered = sorted(documents, key=lambda d: d.id)
    per_document = [
        len(chunk_layout([document], embedder.count_tokens, settings).texts_to_embed())
        for document in ordered
    ]
    starts = range(len(ordered)) if sliding else range(0, len(ordered), size)
    return max(sum(per_document[start : start + size]) for start in starts)


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
    assert re.search(f"embedded on the cluster at {local_cluster.address}: [1-9][0-9]* text", first.output)
    reader = IndexReader.open(IndexStore(tmp_path / "index"))
    assert sorted(d.id for d in reader.documents()) == sorted(d.id for d in bundled_documents)
    again = cli_env.invoke(rag, ["build", "--cluster", local_cluster.address])
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output and "embedded on the cluster" not in again.output


def test_rag_build_shards_on_the_cluster_then_does_nothing(
    local_cluster: LocalCluster, cli_env: CliRunner, tmp_path: Path, bundled_documents: list[Document]
) -> None:
    first = cli_env.invoke(rag, ["build", "--shards", "2", "--cluster", local_cluster.address])
    assert first.exit_code == 0, first.output
    assert re.search(f"embedded on the cluster at {local_cluster.address}: [1-9][0-9]* text", first.output)
    stores = ShardedLayout.open(tmp_path / "index").stores()
    held = [IndexReader.open(store).document_count for store in stores if store.current_pointer()]
    assert sum(held) == len(bundled_documents)
    again = cli_env.invoke(rag, ["build", "--shards", "2", "--cluster", local_cluster.address])
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
