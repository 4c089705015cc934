"""Named collections over shards, without Ray (tests/sharded_in_process.py): the sharded
engine's collections (`ShardedEngine.over`, `has_index_at`), its shard deployments and writers
serving every collection, against the single-process app over ordinary indexes of the same
documents. The same on a real cluster: tests/cluster/test_sharded_serving.py and
test_sharded_writes.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import Document, load_corpus
from index.embedding import HashingEmbedder
from index.errors import ShardCountMismatchError, ShardLayoutError
from index.sharding.layout import ShardedLayout
from index.sharding.writer import ShardedWriter
from service.app import create_app
from service.collections import CollectionNotFoundError, Collections, collection_dir, open_collection
from service.config import EmbedderKind, Settings
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, EXAMPLE_QUESTION, make_settings

pytest.importorskip("ray")
from service.sharded.engine import ShardedEngine
from tests.cluster.test_sharded_serving import same, without_version
from tests.sharded_in_process import in_process_engine

SHARDS = 2
QUESTIONS = [EXAMPLE_QUESTION, "security cooperation between Iran and Pakistan", "defence pact"]


def news() -> list[Document]:
    articles = load_corpus([BUNDLED_CORPUS])
    return [
        replace(a, id=f"news-{a.id}", source="News Copy" if i else "News") for i, a in enumerate(articles)
    ]


def sharded_index(
    root: Path, documents: list[Document], settings: Settings, shard_count: int = SHARDS
) -> None:
    layout = ShardedLayout.open_or_create(root, shard_count)
    ShardedWriter(layout, HashingEmbedder(), settings=settings.index_settings()).sync(documents)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ShardedEngine, TestClient, TestClient]]:
    """(the sharded engine, a client of its app, a client of the single-process app): both hold
    the bundled corpus as `default` and `news()` as the collection `news`."""
    common: dict[str, Any] = {"answerable_threshold": 0.2, "embedder": EmbedderKind.HASHING}
    single = Engine.from_settings(
        make_settings(tmp_path / "single" / "index", **common), embedder=HashingEmbedder()
    )
    single.sync(load_corpus([BUNDLED_CORPUS]))
    open_collection(single.settings, "news", create=True, embedder=HashingEmbedder()).sync(news())
    settings = make_settings(tmp_path / "sharded" / "index", shards=SHARDS, **common)
    sharded_index(settings.index_dir, load_corpus([BUNDLED_CORPUS]), settings)
    sharded_index(collection_dir(settings, "news"), news(), settings)
    engine = in_process_engine(settings, SHARDS)
    with (
        TestClient(create_app(settings, engine=engine)) as sharded,
        TestClient(create_app(single.settings, engine=single)) as reference,
    ):
        yield engine, sharded, reference


def test_a_named_collection_answers_as_the_single_process_services(
    served: tuple[ShardedEngine, TestClient, TestClient],
) -> None:
    _, sharded, reference = served
    news_filter = {"must": [{"key": "source", "match": {"value": "News Copy"}}]}
    for question in QUESTIONS:
        for mode in ("hybrid", "dense", "bm25"):
            for search_filter in (None, news_filter):
                body = {"query": question, "k": 4, "mode": mode, "filter": search_filter}
                expected = reference.post("/collections/news/search", json=body)
                actual = sharded.post("/collections/news/search", json=body)
                assert (expected.status_code, actual.status_code) == (200, 200), actual.text
                same(without_version(expected.json()), without_version(actual.json()), str(body))
                assert actual.json()["results"], body
                assert all(r["document"]["id"].startswith("news-") for r in actual.json()["results"])
                default = sharded.post("/search", json=body).json()
                assert not any(r["document"]["id"].startswith("news-") for r in default["results"])
        body = {"query": question, "k": 3, "feedback": True}
        expected = reference.post("/collections/news/search/documents", json=body)
        actual = sharded.post("/collections/news/search/documents", json=body)
        same(without_version(expected.json()), without_version(actual.json()), str(body))
    for route in ("/collections/news/documents", "/collections/news/documents/news-nournews-larijani-visit"):
        expected, actual = reference.get(route), sharded.get(route)
        assert (expected.status_code, actual.status_code) == (200, 200), actual.text
        same(without_version(expected.json()), without_version(actual.json()), route)
    health = sharded.get("/collections/news/healthz").json()
    assert (health["documents"], health["segments"]) == (3, SHARDS)
    assert health["index_version"] != sharded.get("/healthz").json()["index_version"]


def test_collections_are_listed_found_and_refused_as_in_one_process(
    served: tuple[ShardedEngine, TestClient, TestClient], tmp_path: Path
) -> None:
    engine, sharded, reference = served
    listed = sharded.get("/collections").json()
    assert listed == {
        "collections": [
            {**entry, "index_version": listed["collections"][i]["index_version"]}
            for i, entry in enumerate(reference.get("/collections").json()["collections"])
        ],
        "unavailable": [],
    }
    missing = sharded.get("/collections/sport/search", params={"q": "final"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"
    assert not collection_dir(engine.settings, "sport").exists()  # a read creates nothing

    # Built beside the running service: found on the next request, as in one process.
    sport = [Document(id="final", title="Cup final", text="The final ended 2-1 after extra time.")]
    sharded_index(collection_dir(engine.settings, "sport"), sport, engine.settings)
    found = sharded.get("/collections/sport/search", params={"q": "extra time final", "k": 1}).json()
    assert [r["document"]["id"] for r in found["results"]] == ["final"]


def test_an_index_the_shards_cannot_serve_is_named_and_refused(
    served: tuple[ShardedEngine, TestClient, TestClient],
) -> None:
    engine, sharded, _ = served
    settings = engine.settings
    sharded_index(collection_dir(settings, "three"), news(), settings, shard_count=3)
    open_collection(settings, "plain", create=True, embedder=HashingEmbedder()).sync(news())
    collections = Collections(engine, settings)
    with pytest.raises(ShardCountMismatchError):
        collections.get("three")
    with pytest.raises(ShardLayoutError, match="ordinary index"):
        collections.for_write("plain")
    with pytest.raises(CollectionNotFoundError):
        collections.get("absent")
    listed = sharded.get("/collections").json()
    assert [c["name"] for c in listed["collections"]] == ["default", "news"]
    problems = {entry["name"]: entry["problem"] for entry in listed["unavailable"]}
    assert problems.keys() == {"plain", "three"}
    assert "ordinary index" in problems["plain"] and "3 shards" in problems["three"]
    refused = sharded.post("/collections/three/search", json={"query": "pipeline"})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "index_unavailable"
