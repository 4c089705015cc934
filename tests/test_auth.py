"""API keys: read and admin keys enforced on every route but `/healthz`, and the loopback rule.

Keys travel as `Authorization: Bearer <key>` or `X-API-Key`; admin keys may read; read keys may
not write (403); no key or an unknown one is 401; the key never shows up in the logs. Without
keys, writes are accepted only from a server listening on loopback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import is_loopback_host, key_matches
from service.config import Settings
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION

READ_KEY = "read-key-0123456789"
ADMIN_KEY = "admin-key-9876543210"
DOCUMENT = {"id": "auth-doc", "text": "The trade council met in Karachi on Friday."}


def keyed_client(engine: Engine, **overrides: Any) -> TestClient:
    settings = engine.settings.model_copy(update=overrides)
    return TestClient(create_app(settings, engine=engine))


@pytest.fixture
def keyed(fake_engine: Engine) -> Iterator[TestClient]:
    with keyed_client(fake_engine, api_keys=[READ_KEY], admin_keys=[ADMIN_KEY]) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_healthz_needs_no_key(keyed: TestClient) -> None:
    assert keyed.get("/healthz").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/search", {"params": {"q": EXAMPLE_QUESTION}}),
        ("POST", "/search", {"json": {"query": EXAMPLE_QUESTION}}),
        ("GET", "/documents", {}),
        ("GET", "/documents/nournews-larijani-visit", {}),
        ("POST", "/documents", {"json": DOCUMENT}),
        ("DELETE", "/documents/nournews-larijani-visit", {}),
        ("POST", "/mcp", {"json": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}),
    ],
)
def test_every_other_route_refuses_missing_and_unknown_keys(
    keyed: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    missing = keyed.request(method, path, **kwargs)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    wrong = keyed.request(method, path, headers={"X-API-Key": "not-a-key"}, **kwargs)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert keyed.get("/documents/nournews-larijani-visit", headers=bearer(ADMIN_KEY)).status_code == 200


def test_read_key_reads_by_bearer_or_header(keyed: TestClient) -> None:
    by_bearer = keyed.get("/search", params={"q": EXAMPLE_QUESTION}, headers=bearer(READ_KEY))
    by_header = keyed.get("/search", params={"q": EXAMPLE_QUESTION}, headers={"X-API-Key": READ_KEY})
    assert by_bearer.status_code == by_header.status_code == 200
    assert by_bearer.json()["results"] == by_header.json()["results"]
    assert keyed.get("/documents", headers=bearer(ADMIN_KEY)).status_code == 200


def test_only_admin_keys_write(keyed: TestClient) -> None:
    refused = keyed.post("/documents", json=DOCUMENT, headers=bearer(READ_KEY))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_key_required"
    assert keyed.get("/documents/auth-doc", headers=bearer(READ_KEY)).status_code == 404
    added = keyed.post("/documents", json=DOCUMENT, headers={"X-API-Key": ADMIN_KEY})
    assert added.status_code == 200 and added.json()["status"] == "added"
    assert keyed.delete("/documents/auth-doc", headers=bearer(READ_KEY)).status_code == 403
    assert keyed.delete("/documents/auth-doc", headers=bearer(ADMIN_KEY)).json()["status"] == "removed"


def test_keys_are_never_logged(fake_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with keyed_client(fake_engine, api_keys=[READ_KEY], admin_keys=[ADMIN_KEY]) as client:
        client.get("/documents", headers=bearer(READ_KEY))
        client.get("/documents", headers={"X-API-Key": "wrong-" + ADMIN_KEY})
        client.post("/documents", json=DOCUMENT, headers=bearer(ADMIN_KEY))
        response = client.post("/documents", json=DOCUMENT, headers=bearer(READ_KEY))
    assert caplog.records, "logging was captured"
    assert READ_KEY not in caplog.text and ADMIN_KEY not in caplog.text
    assert READ_KEY not in response.text


def test_without_keys_writes_need_a_loopback_server(fake_engine: Engine) -> None:
    with keyed_client(fake_engine, host="0.0.0.0") as exposed:
        refused = exposed.post("/documents", json=DOCUMENT)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "writes_disabled"
        assert "RAG_ADMIN_KEYS" in refused.json()["error"]["message"]
        assert exposed.delete("/documents/nournews-larijani-visit").status_code == 403
        assert exposed.get("/documents/auth-doc").status_code == 404
        assert exposed.get("/search", params={"q": EXAMPLE_QUESTION}).status_code == 200
    with keyed_client(fake_engine, host="localhost") as local:
        assert local.post("/documents", json=DOCUMENT).json()["status"] == "added"
    with keyed_client(fake_engine, host="0.0.0.0", admin_keys=[ADMIN_KEY]) as exposed_with_key:
        assert exposed_with_key.delete("/documents/auth-doc", headers=bearer(ADMIN_KEY)).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_key_comparison() -> None:
    assert key_matches("b", ["a", "b"]) and not key_matches("c", ["a", "b"]) and not key_matches("a", [])
    assert not key_matches("ab", ["a"]) and not key_matches("é", ["e"])


def test_keys_from_environment_as_list_or_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_API_KEYS", "one, two ,three")
    monkeypatch.setenv("RAG_ADMIN_KEYS", '["root"]')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.api_keys == ["one", "two", "three"] and settings.admin_keys == ["root"]


def test_openapi_declares_both_schemes(keyed: TestClient) -> None:
    spec = keyed.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerKey"] == {**schemes["BearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyHeader"]["name"] == "X-API-Key" and schemes["ApiKeyHeader"]["in"] == "header"
    assert spec["paths"]["/documents"]["post"]["security"] == [{"BearerKey": []}, {"ApiKeyHeader": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
