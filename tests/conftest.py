"""Shared fixtures: a fake-embedder engine for fast tests, the real model for integration tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from corpus import Document, load_corpus
from index.embedding import HashingEmbedder, SentenceTransformerEmbedder, Vectors
from service import cli as cli_module
from service.app import create_app
from service.cluster import use_ray_defaults
from service.collection_names import DEFAULT_COLLECTION
from service.collections import open_collection
from service.config import Settings, get_settings
from service.engine import Engine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
use_ray_defaults()
PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CORPUS = PROJECT_ROOT / "corpus" / "articles"
EXAMPLE_QUESTION = "what projects could Larijani's visit accelerate?"


class CountingEmbedder(HashingEmbedder):
    """The fake embedder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.embedded.extend(texts)
        return super().embed_batch(texts)


def make_settings(index_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: explicit values only, never the developer's environment or .env."""
    values: dict[str, Any] = {
        "index_dir": index_dir,
        "collections_dir": index_dir.parent / "collections",  # never the project's own .rag/
        "corpus_dirs": [BUNDLED_CORPUS],
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def engine_with_fake_embedder(
    settings: Settings, collection: str = DEFAULT_COLLECTION, create: bool = False
) -> Engine:
    """The CLI's engine of `collection`, with the fake embedder."""
    return open_collection(settings, collection, create=create, embedder=HashingEmbedder())


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The `rag` CLI over an index in `tmp_path` and the bundled corpus, with the fake embedder."""
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_COLLECTIONS_DIR", str(tmp_path / "collections"))  # never the project's .rag/
    monkeypatch.setenv("RAG_CORPUS_DIRS", json.dumps([str(BUNDLED_CORPUS)]))
    monkeypatch.setattr(cli_module, "_engine", engine_with_fake_embedder)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def bundled_documents() -> list[Document]:
    return load_corpus([BUNDLED_CORPUS])


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def fake_engine(tmp_path: Path, bundled_documents: list[Document]) -> Engine:
    """An engine over the bundled corpus with the deterministic fake embedder."""
    engine = Engine.from_settings(
        make_settings(tmp_path / "index", answerable_threshold=0.2), embedder=HashingEmbedder()
    )
    engine.sync(bundled_documents)
    return engine


@pytest.fixture
def client(fake_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(fake_engine.settings, engine=fake_engine)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def real_engine(
    tmp_path_factory: pytest.TempPathFactory,
    real_embedder: SentenceTransformerEmbedder,
    bundled_documents: list[Document],
) -> Engine:
    """The real model over the real corpus, built once per test session."""
    engine = Engine.from_settings(
        make_settings(tmp_path_factory.mktemp("real") / "index"), embedder=real_embedder
    )
    engine.sync(bundled_documents)
    return engine


@pytest.fixture(scope="session")
def real_client(real_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(real_engine.settings, engine=real_engine)) as test_client:
        yield test_client
