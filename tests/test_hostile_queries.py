"""Questions a hostile or careless client sends: invalid Unicode, control characters, loose types,
unknown parameters. Every search route answers them with a 4xx or a result, never a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEARCH_ROUTES = ["/search", "/search/documents", "/search/anthropic", "/search/openai"]
MODES = ["hybrid", "dense", "bm25"]


def post_raw(client: TestClient, path: str, body: str) -> Any:
    """POST `body` as written: JSON escapes such as "\\ud800" reach the server unchanged."""
    return client.post(path, content=body.encode("ascii"), headers={"content-type": "application/json"})


def get_raw(client: TestClient, query: str, mode: str) -> Any:
    """GET /search with `query` percent-encoded byte for byte, lone surrogates included (as
    "surrogatepass" UTF-8, the bytes a careless client would send)."""
    encoded = quote(query.encode("utf-8", "surrogatepass"), safe="")
    return client.get(f"/search?q={encoded}&mode={mode}")


@pytest.mark.parametrize("path", SEARCH_ROUTES)
def test_a_lone_surrogate_in_a_query_is_a_422(client: TestClient, path: str) -> None:
    response = post_raw(client, path, '{"query": "\\ud800 peace"}')
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_query"
    assert "not valid Unicode" in response.json()["error"]["message"]
    assert client.get("/healthz").status_code == 200  # and the connection still works


@pytest.mark.parametrize("mode", MODES)
def test_a_lone_surrogate_in_each_mode_and_in_get(client: TestClient, mode: str) -> None:
    body = json.dumps({"query": "pipeline \udfff", "mode": mode})  # ensure_ascii: the escape survives
    assert post_raw(client, "/search", body).status_code == 422
    assert get_raw(client, "\ud83d port", mode).status_code < 500


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/search", {"query": "ports", "k": "3"}, "k"),
        ("/search", {"query": "ports", "k": True}, "k"),
        ("/search", {"query": "ports", "k": 3.0}, "k"),
        ("/search", {"query": "ports", "context": "1"}, "context"),
        ("/search", {"query": 7}, "query"),
        ("/search/documents", {"query": "ports", "feedback": "yes"}, "feedback"),
        ("/search/documents", {"query": "ports", "k": "2"}, "k"),
        ("/search/anthropic", {"query": "ports", "k": "3"}, "k"),
    ],
)
def test_json_bodies_take_exact_types(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]


def test_get_search_refuses_unknown_parameters_as_post_does(client: TestClient) -> None:
    for response in (
        client.get("/search", params={"q": "ports", "foo": "1"}),
        client.post("/search", json={"query": "ports", "foo": 1}),
    ):
        assert response.status_code == 422
        assert "foo" in response.json()["error"]["message"]
    ok = client.get("/search", params={"q": "ports", "k": "2", "mode": "bm25", "context": "1"})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 2 and ok.json()["mode"] == "bm25"


def test_head_healthz(client: TestClient) -> None:
    response = client.head("/healthz")
    assert response.status_code == 200 and response.content == b""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.text(alphabet=st.characters(codec=None, exclude_categories=()), min_size=0, max_size=40),
    path=st.sampled_from(SEARCH_ROUTES),
    mode=st.sampled_from(MODES),
)
def test_random_unicode_queries_never_get_a_5xx(client: TestClient, query: str, path: str, mode: str) -> None:
    body: dict[str, Any] = {"query": query}
    if path != "/search/documents":
        body["mode"] = mode
    response = post_raw(client, path, json.dumps(body))  # ensure_ascii keeps surrogates as escapes
    assert response.status_code < 500, (query, response.text)
    if response.status_code == 200:
        assert "results" in response.json() or "content" in response.json() or "output" in response.json()
    get = get_raw(client, query, mode)
    assert get.status_code < 500, (query, get.text)
