"""Request logs, request ids, readiness and rate limits against real server processes (issue 23).

Three servers (the fake embedder, the bundled corpus): the defaults (its start-up polled for
`/readyz` 503 before the load and 200 after, then request ids and log lines read from its
stderr, which is a file, so lines are JSON); one with keys, RAG_LOG_QUERIES and a read limit;
one over a damaged index (not ready, with the reason, and alive).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corpus import Document
from index.embedding import HashingEmbedder
from service.engine import Engine
from tests.conftest import make_settings
from tests.rag_server_process import ServerProcess
from tests.test_durability import damage_file

QUERY_WORD = "zebraquokka"  # in no article: if it is in the log, the query was logged
LINE_FIELDS = {"time", "request_id", "method", "route", "status", "duration_ms", "key", "client"}


def built_index(root: Path, documents: list[Document]) -> Path:
    Engine.from_settings(make_settings(root), embedder=HashingEmbedder()).sync(documents)
    return root


def log_lines(log: Path, request_id: str, deadline_seconds: float = 10) -> list[dict[str, Any]]:
    """The JSON log lines of `request_id` (written once the response is sent: polled)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        found = []
        for line in log.read_text("utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                fields = json.loads(line)
                if fields.get("request_id") == request_id:
                    found.append(fields)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def default_server(
    tmp_path_factory: pytest.TempPathFactory, bundled_documents: list[Document]
) -> Iterator[tuple[ServerProcess, Path, list[tuple[str, int, dict[str, Any]]]]]:
    """The server with the default settings, and what its probes answered while it started."""
    root = tmp_path_factory.mktemp("ops")
    log = root / "server.log"
    server = ServerProcess(built_index(root / "index", bundled_documents), log, wait_for=None)
    seen: list[tuple[str, int, dict[str, Any]]] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                for probe in ("/healthz", "/readyz"):
                    response = httpx.get(f"{server.url}{probe}", timeout=5)
                    seen.append((probe, response.status_code, response.json()))
            except httpx.TransportError:
                time.sleep(0.02)  # not listening yet
                continue
            if seen[-1][:2] == ("/readyz", 200):
                break
        yield server, log, seen
    finally:
        server.stop()


def test_readyz_is_503_while_loading_then_200(
    default_server: tuple[ServerProcess, Path, list[tuple[str, int, dict[str, Any]]]],
    bundled_documents: list[Document],
) -> None:
    server, _, seen = default_server
    readiness = [(status, body) for probe, status, body in seen if probe == "/readyz"]
    health = [(status, body) for probe, status, body in seen if probe == "/healthz"]
    # The server listens before the model and the index are loaded (service/readiness.py).
    assert readiness[0][0] == 503, seen
    assert readiness[0][1]["error"]["code"] == "not_ready"
    assert readiness[0][1]["error"]["request_id"]
    assert readiness[-1] == (200, {"status": "ready", "index_version": readiness[-1][1]["index_version"]})
    assert [status for status, _ in readiness] == sorted(status for status, _ in readiness)[::-1]
    # Liveness: 200 throughout, `loading` first, then the index's fields.
    assert all(status == 200 for status, _ in health)
    assert health[0][1]["status"] == "loading" and health[0][1]["documents"] is None
    after = httpx.get(f"{server.url}/healthz", timeout=10).json()
    assert after["status"] == "ok" and after["documents"] == len(bundled_documents)


def test_request_ids_round_trip_into_headers_and_error_bodies(
    default_server: tuple[ServerProcess, Path, Any],
) -> None:
    server, _, _ = default_server
    with httpx.Client(base_url=server.url, timeout=30) as client:
        given = client.get("/search", params={"q": "ports"}, headers={"X-Request-ID": "client-id.1"})
        assert given.status_code == 200 and given.headers["x-request-id"] == "client-id.1"
        generated = client.get("/search", params={"q": "ports"}).headers["x-request-id"]
        assert len(generated) == 32 and int(generated, 16) >= 0
        for unsafe in ("has spaces", "x" * 129, 'quote"d'):
            replaced = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["x-request-id"]
            assert replaced != unsafe and len(replaced) == 32
        missing = client.get("/documents/nope", headers={"X-Request-ID": "id-404"})
        assert missing.status_code == 404 and missing.json()["error"]["request_id"] == "id-404"
        invalid = client.get("/search", headers={"X-Request-ID": "id-422"})
        assert invalid.status_code == 422 and invalid.json()["error"]["request_id"] == "id-422"
        malformed = client.post("/search", content=b"{", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 400
        assert malformed.json()["error"]["request_id"] == malformed.headers["x-request-id"]
        unrouted = client.get("/nowhere")
        assert unrouted.json()["error"]["request_id"] == unrouted.headers["x-request-id"]


def test_one_json_line_per_request_without_the_query(
    default_server: tuple[ServerProcess, Path, Any],
) -> None:
    server, log, _ = default_server
    with httpx.Client(base_url=server.url, timeout=30) as client:
        search = client.post(
            "/search", json={"query": f"ports {QUERY_WORD}", "k": 3}, headers={"X-Request-ID": "log-1"}
        )
        client.get("/documents/nope", headers={"X-Request-ID": "log-2"})
    [line] = log_lines(log, "log-1")
    assert set(line) >= LINE_FIELDS
    assert line["route"] == "/search" and line["method"] == "POST" and line["status"] == 200
    assert line["results"] == len(search.json()["results"]) == 3
    assert line["index_version"] == search.json()["index_version"]
    assert line["key"] is None and line["client"] == "127.0.0.1" and line["duration_ms"] > 0
    assert "trace_id" not in line  # tracing is off by default
    [missing] = log_lines(log, "log-2")
    assert missing["route"] == "/documents/{document_id}" and missing["status"] == 404
    assert "results" not in missing
    assert QUERY_WORD not in log.read_text("utf-8", errors="replace")
    assert '"GET /healthz' not in log.read_text("utf-8", errors="replace")  # no uvicorn access line


@pytest.fixture(scope="module")
def keyed_server(
    tmp_path_factory: pytest.TempPathFactory, bundled_documents: list[Document]
) -> Iterator[tuple[ServerProcess, Path]]:
    root = tmp_path_factory.mktemp("ops-keys")
    log = root / "server.log"
    server = ServerProcess(
        built_index(root / "index", bundled_documents),
        log,
        api_keys="key-one,key-two,key-three",
        log_queries="true",
        rate_limit_reads="0.5",
        rate_limit_burst="5",  # 5 reads in any 10 s
    )
    try:
        yield server, log
    finally:
        server.stop()


def test_queries_and_key_ids_with_log_queries(keyed_server: tuple[ServerProcess, Path]) -> None:
    server, log = keyed_server
    headers = {"Authorization": "Bearer key-three", "X-Request-ID": "with-query"}
    response = httpx.post(f"{server.url}/search", json={"query": f"ports {QUERY_WORD}"}, headers=headers)
    assert response.status_code == 200
    [line] = log_lines(log, "with-query")
    assert line["query"] == f"ports {QUERY_WORD}"
    assert line["key"] == hashlib.sha256(b"key-three").hexdigest()[:8]
    assert "key-three" not in log.read_text("utf-8", errors="replace")


def test_a_burst_over_the_limit_is_429_and_other_keys_are_unaffected(
    keyed_server: tuple[ServerProcess, Path],
) -> None:
    server, log = keyed_server
    one = {"Authorization": "Bearer key-one"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        statuses = [client.get("/documents", headers=one).status_code for _ in range(8)]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:], statuses
        refused = client.get("/documents", headers={**one, "X-Request-ID": "limited"})
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "rate_limited" and error["request_id"] == "limited"
        other = client.get("/documents", headers={"X-API-Key": "key-two"})
        assert other.status_code == 200
        assert client.get("/readyz").status_code == 200  # probes are never limited
    [line] = log_lines(log, "limited")
    assert line["status"] == 429


def test_a_damaged_index_is_alive_but_not_ready(tmp_path: Path, bundled_documents: list[Document]) -> None:
    index = built_index(tmp_path / "index", bundled_documents)
    damage_file(index)
    server = ServerProcess(index, tmp_path / "server.log", wait_for="/healthz")
    try:
        deadline = time.monotonic() + 60
        while (health := httpx.get(f"{server.url}/healthz", timeout=10).json())["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert health["status"] == "failed"
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "index_unavailable"
        assert "damaged" in ready.json()["error"]["message"]
        search = httpx.get(f"{server.url}/search", params={"q": "ports"}, timeout=10)
        assert search.status_code == 503 and search.json()["error"]["code"] == "index_unavailable"
        assert "Traceback" not in search.text
    finally:
        server.stop()
