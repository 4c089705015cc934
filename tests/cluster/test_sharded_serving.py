"""The sharded service on Ray Serve answers as the single-process service does (`cluster` marker).

On the session's real local Ray cluster (a head and a worker node), one Serve deployment per
module (~15 s to start): 2 shards of 2 replicas each (so one query's calls to a shard may reach
two replicas) and 2 replicas of the encoder and of the ingress, over a sharded index of the
bundled corpus plus a syndicated copy of each article (so both of the 2 shards hold documents,
and exact duplicates sit on different shards), the fake embedder; the single-process app over
one index of the same documents is the reference.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from corpus import Document, load_corpus
from index.embedding import HashingEmbedder, SentenceTransformerEmbedder
from index.search.reader import IndexReader
from index.sharding.assignment import shard_of
from index.sharding.layout import ShardedLayout
from index.sharding.writer import ShardedWriter
from service.app import create_app
from service.cluster.local import LocalCluster
from service.collections import collection_dir, open_collection
from service.config import EmbedderKind, Settings
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, EXAMPLE_QUESTION, make_settings
from tests.live_server import free_port
from tests.test_collections_server import MCP_HEADERS

pytestmark = pytest.mark.cluster
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

SHARDS = 2
WIRE = "wire"  # the named collection every deployment here also serves
QUESTIONS = [
    EXAMPLE_QUESTION,
    "Who wrote the article arguing for an Iran–Pakistan defence pact?",
    "security cooperation between Iran and Pakistan",
    "what is the population of Tokyo?",
]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"must": [{"key": "source", "match": {"any": ["Nournews", "Syndicated"]}}]},
    {"must_not": [{"key": "id", "match": {"value": "nournews-larijani-visit"}}]},
]


def corpus() -> list[Document]:
    articles = load_corpus([BUNDLED_CORPUS])
    copies = [replace(a, id=f"{a.id}-syndicated", source="Syndicated") for a in articles]
    return sorted(articles + copies, key=lambda document: document.id)


def wire_corpus() -> list[Document]:
    """The named collection `WIRE`'s documents: the bundled articles again under other ids, one of
    them as a second source's copy (so its two shards both hold documents)."""
    articles = load_corpus([BUNDLED_CORPUS])
    return [replace(a, id=f"w-{a.id}", source="Wire" if i else "Wire Copy") for i, a in enumerate(articles)]


@contextlib.contextmanager
def deployment(
    cluster: LocalCluster, namespace: str, **overrides: Any
) -> Iterator[tuple[str, Engine, Settings, ShardedLayout]]:
    """The sharded service of `corpus()` (fake embedder, `SHARDS` shards; `overrides` are further
    settings) deployed on `cluster`, and the single-process engine over one index of the same
    documents: (the service's URL, that engine, the service's settings, its layout). Both also
    hold the collection `WIRE` (`wire_corpus()`), sharded the same way. Serve and the driver's
    connection are shut down, and the indexes removed, on the way out."""
    root = Path(tempfile.mkdtemp(prefix="rs-"))
    documents = corpus()
    common: dict[str, Any] = {"answerable_threshold": 0.2, "embedder": EmbedderKind.HASHING}
    single = Engine.from_settings(make_settings(root / "single", **common), embedder=HashingEmbedder())
    single.sync(documents)
    open_collection(single.settings, WIRE, create=True, embedder=HashingEmbedder()).sync(wire_corpus())
    settings = make_settings(
        root / "sharded",
        collections_dir=root / "sharded-collections",
        host="127.0.0.1",
        port=free_port(),
        shards=SHARDS,
        **common,
        **overrides,
    )
    layout = ShardedLayout.open_or_create(settings.index_dir, SHARDS)
    ShardedWriter(layout, HashingEmbedder(), settings=settings.index_settings()).sync(documents)
    wire = ShardedLayout.open_or_create(collection_dir(settings, WIRE), SHARDS)
    ShardedWriter(wire, HashingEmbedder(), settings=settings.index_settings()).sync(wire_corpus())
    from service.sharded.deployments import deploy

    ray.init(address=cluster.address, log_to_driver=False, namespace=namespace)
    try:
        yield deploy(settings), single, settings, layout
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def deployed(local_cluster: LocalCluster) -> Iterator[tuple[str, TestClient, Settings, ShardedLayout]]:
    """(the sharded service's URL, a client of the single-process app, its settings, the layout),
    on the session's real local cluster (a head and a worker node, separate processes)."""
    assert {shard_of(document.id, SHARDS) for document in corpus()} == set(range(SHARDS))
    with (
        deployment(
            local_cluster,
            "rag-sharded-serving-test",
            shard_replicas=2,
            encoder_replicas=2,
            ingress_replicas=2,
        ) as (
            url,
            single,
            settings,
            layout,
        ),
        TestClient(create_app(single.settings, engine=single)) as client,
    ):
        yield url, client, settings, layout


def same(expected: Any, actual: Any, where: str = "") -> None:
    """Equal JSON, numbers to 1e-6."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert math.isclose(expected, actual, abs_tol=1e-6), where
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and expected.keys() == actual.keys(), where
        for key in expected:
            same(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(expected) == len(actual), where
        for index, (wanted, got) in enumerate(zip(expected, actual, strict=True)):
            same(wanted, got, f"{where}[{index}]")
    else:
        assert expected == actual, where


def without_version(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "index_version"}


def test_healthz_shows_the_sharded_version(deployed: tuple[str, TestClient, Settings, ShardedLayout]) -> None:
    url, client, _, layout = deployed
    health = httpx.get(f"{url}/healthz", timeout=30).json()
    versions = [IndexReader.open(store).version for store in layout.stores()]
    single = client.get("/healthz").json()
    assert health["index_version"] == ",".join(versions)
    assert (health["documents"], health["chunks"]) == (single["documents"], single["chunks"])
    assert health["documents"] == 6
    assert health["segments"] == SHARDS
    from service.sharded.deployments import APP_NAME

    deployments = serve.status().applications[APP_NAME].deployments
    running = {name: status.replica_states.get("RUNNING", 0) for name, status in deployments.items()}
    assert running == {
        "Ingress": 2,
        "QuestionEncoder": 2,
        "jobs": 1,
        **{f"shard-{shard}": 2 for shard in range(SHARDS)},
        **{f"writer-{shard}": 1 for shard in range(SHARDS)},
    }


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_sharded_search_answers_as_the_single_process_service(
    deployed: tuple[str, TestClient, Settings, ShardedLayout], mode: str
) -> None:
    url, client, _, _ = deployed
    version = httpx.get(f"{url}/healthz", timeout=30).json()["index_version"]
    answered = 0
    with httpx.Client(base_url=url, timeout=60) as sharded:
        for question in QUESTIONS:
            for search_filter in FILTERS:
                for k in range(1, 6):
                    body = {"query": question, "k": k, "mode": mode, "filter": search_filter}
                    expected = client.post("/search", json=body)
                    actual = sharded.post("/search", json=body)
                    assert (expected.status_code, actual.status_code) == (200, 200), actual.text
                    same(without_version(expected.json()), without_version(actual.json()), f"{body}")
                    assert actual.json()["index_version"] == version
                    answered += len(actual.json()["results"])
            params = {"q": question, "k": 3, "mode": mode, "source": "Syndicated", "context": 1}
            expected, actual = client.get("/search", params=params), sharded.get("/search", params=params)
            assert (expected.status_code, actual.status_code) == (200, 200), actual.text
            same(without_version(expected.json()), without_version(actual.json()), f"{params}")
    assert answered > 0


def test_the_llm_formats_answer_as_the_single_process_service(
    deployed: tuple[str, TestClient, Settings, ShardedLayout],
) -> None:
    url, client, _, _ = deployed
    body = {"query": EXAMPLE_QUESTION, "k": 3}
    for route in ("/search/anthropic", "/search/openai"):
        expected, actual = client.post(route, json=body), httpx.post(f"{url}{route}", json=body, timeout=60)
        assert (expected.status_code, actual.status_code) == (200, 200), actual.text
        same(without_version(expected.json()), without_version(actual.json()), route)


def test_the_mcp_search_tool_answers_as_the_single_process_service(
    deployed: tuple[str, TestClient, Settings, ShardedLayout],
) -> None:
    url, client, _, _ = deployed
    for arguments in ({"question": EXAMPLE_QUESTION, "k": 3}, {"question": "defence pact", "mode": "bm25"}):
        message = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "search", "arguments": arguments},
        }
        # The MCP transport refuses TestClient's host name (DNS rebinding protection).
        expected = client.post("/mcp", json=message, headers={**MCP_HEADERS, "host": "127.0.0.1:80"})
        actual = httpx.post(f"{url}/mcp", json=message, headers=MCP_HEADERS, timeout=60)
        assert (expected.status_code, actual.status_code) == (200, 200), actual.text
        wanted, got = expected.json()["result"], actual.json()["result"]
        assert not got.get("isError"), got
        assert got["structuredContent"]["passages"], got
        same(without_version(wanted["structuredContent"]), without_version(got["structuredContent"]))


def test_sharded_document_search_answers_as_the_single_process_service(
    deployed: tuple[str, TestClient, Settings, ShardedLayout],
) -> None:
    url, client, _, _ = deployed
    version = httpx.get(f"{url}/healthz", timeout=30).json()["index_version"]
    with httpx.Client(base_url=url, timeout=60) as sharded:
        for question in QUESTIONS:
            for search_filter, feedback in itertools.product(FILTERS, (False, True)):
                body = {"query": question, "k": 6, "filter": search_filter, "feedback": feedback}
                expected = client.post("/search/documents", json=body)
                actual = sharded.post("/search/documents", json=body)
                assert (expected.status_code, actual.status_code) == (200, 200), actual.text
                same(without_version(expected.json()), without_version(actual.json()), f"{body}")
                assert actual.json()["index_version"] == version
        # Every document of both shards, an article and its syndicated copy on different shards.
        found = sharded.post("/search/documents", json={"query": "Iran Pakistan", "k": 6}).json()
        assert len({result["document"]["id"] for result in found["results"]}) == 6


def test_a_named_collection_answers_as_the_single_process_service(
    deployed: tuple[str, TestClient, Settings, ShardedLayout],
) -> None:
    url, client, settings, _ = deployed
    wire = ShardedLayout.open(collection_dir(settings, WIRE), SHARDS)
    assert {shard_of(document.id, SHARDS) for document in wire_corpus()} == set(range(SHARDS))
    prefix = f"/collections/{WIRE}"
    with httpx.Client(base_url=url, timeout=60) as sharded:
        health = sharded.get(f"{prefix}/healthz").json()
        assert health["index_version"] == ",".join(IndexReader.open(store).version for store in wire.stores())
        assert (health["documents"], health["segments"]) == (3, SHARDS)
        wire_filter = {"must_not": [{"key": "source", "match": {"value": "Wire Copy"}}]}
        for question, search_filter, mode in itertools.product(
            QUESTIONS, [None, wire_filter], ["hybrid", "dense", "bm25"]
        ):
            body = {"query": question, "k": 4, "mode": mode, "filter": search_filter}
            expected, actual = (
                client.post(f"{prefix}/search", json=body),
                sharded.post(f"{prefix}/search", json=body),
            )
            assert (expected.status_code, actual.status_code) == (200, 200), actual.text
            same(without_version(expected.json()), without_version(actual.json()), f"{body}")
            assert actual.json()["index_version"] == health["index_version"]
            assert all(r["document"]["id"].startswith("w-") for r in actual.json()["results"])
            # The default collection, asked the same, never answers with the named one's documents.
            default = sharded.post("/search", json=body).json()
            assert not any(r["document"]["id"].startswith("w-") for r in default["results"])
        for route, body in (
            (f"{prefix}/search/documents", {"query": EXAMPLE_QUESTION, "k": 3, "feedback": True}),
            (f"{prefix}/search/anthropic", {"query": EXAMPLE_QUESTION, "k": 2}),
        ):
            expected, actual = client.post(route, json=body), sharded.post(route, json=body)
            assert (expected.status_code, actual.status_code) == (200, 200), actual.text
            same(without_version(expected.json()), without_version(actual.json()), route)
        expected, actual = client.get(f"{prefix}/documents"), sharded.get(f"{prefix}/documents")
        same(without_version(expected.json()), without_version(actual.json()), "documents")
        listed = sharded.get("/collections").json()
        assert [c["name"] for c in listed["collections"]] == ["default", WIRE] and not listed["unavailable"]
        assert [(c["documents"], c["chunks"]) for c in listed["collections"]] == [
            (c["documents"], c["chunks"]) for c in client.get("/collections").json()["collections"]
        ]
        for route in ("/collections/nowhere/search?q=pipeline", "/collections/nowhere/healthz"):
            missing = sharded.get(route)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"
        assert sharded.get("/collections/Not-A-Name/search?q=x").status_code == 422


@pytest.mark.integration
def test_with_the_real_model_a_sharded_search_answers_as_the_single_process_service(
    deployed: tuple[str, TestClient, Settings, ShardedLayout],
    real_engine: Engine,
    real_embedder: SentenceTransformerEmbedder,
    bundled_documents: list[Document],
) -> None:
    """The bundled corpus over 3 shards (shards 1 and 2 hold its articles, shard 0 none), the
    real model in the encoder deployment; replaces the fake-embedder deployment, so it runs last."""
    url, _, fake_settings, _ = deployed
    settings = make_settings(
        fake_settings.index_dir.parent / "real", host="127.0.0.1", port=fake_settings.port, shards=3
    )
    layout = ShardedLayout.open_or_create(settings.index_dir, 3)
    ShardedWriter(layout, real_embedder, settings=settings.index_settings()).sync(bundled_documents)
    from service.sharded.deployments import APP_NAME, application

    serve.run(application(settings), name=APP_NAME, route_prefix="/")
    with TestClient(create_app(real_engine.settings, engine=real_engine)) as client:
        for question in QUESTIONS:
            for mode in ("hybrid", "dense", "bm25"):
                body = {"query": question, "k": 5, "mode": mode}
                expected, actual = (
                    client.post("/search", json=body),
                    httpx.post(f"{url}/search", json=body, timeout=60),
                )
                assert (expected.status_code, actual.status_code) == (200, 200), actual.text
                same(without_version(expected.json()), without_version(actual.json()), f"{body}")
        assert httpx.post(f"{url}/search", json={"query": EXAMPLE_QUESTION, "k": 1}, timeout=60).json()[
            "answerable"
        ]
