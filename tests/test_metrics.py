"""`GET /metrics` of a real server process: the exposition parses, counters move by exactly the
requests made, search stages and encoder batches are recorded, labels are route templates, and
the index gauges match the index. The key rules and RAG_METRICS=false run in-process."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from corpus import Document
from index.embedding import HashingEmbedder
from index.search.stages import STAGES
from service.app import create_app
from service.engine import Engine
from tests.conftest import make_settings
from tests.rag_server_process import ServerProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **headers: str) -> Samples:
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, bundled_documents: list[Document]) -> Iterator[str]:
    root = tmp_path_factory.mktemp("metrics")
    engine = Engine.from_settings(make_settings(root / "index"), embedder=HashingEmbedder())
    engine.sync(bundled_documents)
    process = ServerProcess(root / "index", root / "server.log")
    try:
        yield process.url
    finally:
        process.stop()


def test_counters_move_by_the_requests_made(server: str) -> None:
    before = scrape(server)
    missing = f"no-such-{uuid.uuid4().hex}"
    for question in ("Who visited Islamabad?", "defence pact", "security talks"):
        assert httpx.get(f"{server}/search", params={"q": question}, timeout=30).status_code == 200
    for question in ("port of Gwadar", "Larijani"):
        assert httpx.post(f"{server}/search", json={"query": question}, timeout=30).status_code == 200
    assert httpx.get(f"{server}/documents/{missing}", timeout=30).status_code == 404
    assert httpx.get(f"{server}/search", params={"q": ""}, timeout=30).status_code == 422
    assert httpx.request("TRACE", f"{server}/search", timeout=30).status_code == 405
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "rag_http_requests_total"
    assert delta(requests, route="/search", method="GET", status="200") == 3
    assert delta(requests, route="/search", method="POST", status="200") == 2
    assert delta(requests, route="/search", method="GET", status="422") == 1
    assert delta(requests, route="/documents/{document_id}", method="GET", status="404") == 1
    assert delta("rag_http_request_duration_seconds_count", route="/search", method="GET") == 4
    assert delta(requests, route="/search", method="other", status="405") == 1
    assert delta("rag_errors_total", code="document_not_found", status="404") == 1
    # Labels are templates: the raw path with its random id appears nowhere.
    assert not any(missing in label for _, labels in after for pair in labels for label in pair)
    # Every stage of the five hybrid searches (the empty question never reached one).
    for stage in STAGES:
        assert delta("rag_search_stage_duration_seconds_count", stage=stage) == 5, stage
        assert delta("rag_search_stage_duration_seconds_sum", stage=stage) > 0, stage
    # Each question was encoded once, in batches of whatever size came together.
    assert delta("rag_encoder_batch_size_sum") == 5
    assert 1 <= delta("rag_encoder_batch_size_count") <= 5


def test_index_gauges_and_writes(server: str, bundled_documents: list[Document]) -> None:
    before = scrape(server)
    assert value(before, "rag_index_documents", collection="default") == len(bundled_documents)
    assert value(before, "rag_index_chunks", collection="default") > len(bundled_documents)
    assert value(before, "rag_index_segments", collection="default") >= 1
    assert value(before, "rag_index_disk_bytes", collection="default") > 0
    assert value(before, "rag_index_version_age_seconds", collection="default") >= 0
    document = {"id": "metrics-probe", "title": "Probe", "text": "A dispatch about the metrics probe."}
    assert httpx.post(f"{server}/documents", json=document, timeout=60).status_code == 200
    after = scrape(server)
    assert value(after, "rag_index_documents", collection="default") == len(bundled_documents) + 1
    assert value(after, "rag_index_generation", collection="default") > value(
        before, "rag_index_generation", collection="default"
    )
    labels = {"collection": "default", "kind": "upsert"}
    assert value(after, "rag_writes_total", **labels) - value(before, "rag_writes_total", **labels) == 1
    written = "rag_written_documents_total"
    assert value(after, written, **labels) - value(before, written, **labels) == 1
    assert value(after, "rag_write_duration_seconds_count", collection="default") >= 1


@pytest.mark.parametrize(
    ("metrics_key", "presented", "status"),
    [
        (None, None, 401),
        (None, "reader", 200),
        ("scraper", "reader", 401),
        ("scraper", None, 401),
        ("scraper", "scraper", 200),
    ],
)
def test_metrics_key(
    fake_engine: Engine, tmp_path: Path, metrics_key: str | None, presented: str | None, status: int
) -> None:
    settings = make_settings(tmp_path / "index", api_keys=["reader"], metrics_key=metrics_key)
    headers = {} if presented is None else {"X-API-Key": presented}
    with TestClient(create_app(settings, engine=fake_engine)) as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error"]["code"] in ("missing_api_key", "invalid_api_key")


def test_metrics_off(fake_engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "index", metrics=False)
    with TestClient(create_app(settings, engine=fake_engine)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/search", params={"q": "Islamabad"}).status_code == 200
        assert "x-trace-id" not in client.get("/healthz").headers


def test_the_dashboard_asks_only_for_metrics_the_service_exposes(fake_engine: Engine) -> None:
    dashboard = json.loads((PROJECT_ROOT / "docs" / "grafana" / "rag-dashboard.json").read_text("utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    asked = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for e in expressions
        for name in re.findall(r"\brag_\w+", e)
    }
    with TestClient(create_app(fake_engine.settings, engine=fake_engine)) as client:
        client.get("/search", params={"q": "Islamabad"})
        exposed = {family.name for family in text_string_to_metric_families(client.get("/metrics").text)}
    assert asked and asked <= exposed, asked - exposed
