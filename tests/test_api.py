"""The HTTP API with the fake embedder: response shapes, citation invariants, every error path."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION


def assert_citations_hold(client: TestClient, body: dict[str, Any]) -> None:
    texts: dict[str, str] = {}
    for result in body["results"]:
        doc_id = result["document"]["id"]
        if doc_id not in texts:
            texts[doc_id] = client.get(f"/documents/{doc_id}").json()["text"]
        text = texts[doc_id]
        assert text[result["start"] : result["end"]] == result["text"]
        answer = result["answer"]
        assert text[answer["start"] : answer["end"]] == answer["text"]
        assert result["start"] <= answer["start"] < answer["end"] <= result["end"]


def test_healthz_reports_index(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["documents"] == 3
    assert body["chunks"] >= 3
    assert body["index_version"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_post_shape_and_citations(client: TestClient, mode: str) -> None:
    response = client.post("/search", json={"query": EXAMPLE_QUESTION, "k": 4, "mode": mode})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == EXAMPLE_QUESTION
    assert body["mode"] == mode
    assert body["index_version"] == client.get("/healthz").json()["index_version"]
    assert 1 <= len(body["results"]) <= 4
    assert [r["rank"] for r in body["results"]] == list(range(1, len(body["results"]) + 1))
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    first = body["results"][0]
    assert set(first["document"]) == {"id", "title", "source", "author", "url", "published"}
    assert set(first["explain"]) >= {"dense_rank", "dense_score", "bm25_rank", "bm25_score", "matched_terms"}
    assert_citations_hold(client, body)


def test_search_get_matches_post(client: TestClient) -> None:
    got = client.get("/search", params={"q": EXAMPLE_QUESTION, "k": 3}).json()
    posted = client.post("/search", json={"query": EXAMPLE_QUESTION, "k": 3}).json()
    assert [r["chunk_id"] for r in got["results"]] == [r["chunk_id"] for r in posted["results"]]


def test_bm25_explanation_names_matched_terms(client: TestClient) -> None:
    body = client.post("/search", json={"query": "Peace Pipeline maritime", "mode": "bm25", "k": 1}).json()
    top = body["results"][0]
    assert "Peace Pipeline" in top["text"]
    assert {"peace", "pipeline", "maritime"} <= set(top["explain"]["matched_terms"])
    assert top["explain"]["bm25_rank"] == 1


def test_documents_list_and_get(client: TestClient) -> None:
    listing = client.get("/documents").json()
    ids = [d["id"] for d in listing["documents"]]
    assert ids == ["irandaily-security-dialogues", "nournews-larijani-visit", "thepenpk-defence-pact"]
    pen = client.get("/documents/thepenpk-defence-pact").json()
    assert pen["source"] == "The Pen PK"
    assert pen["author"] == "Ahmed Ali"
    assert "Read More" not in pen["text"]
    assert pen["url"] == "" and pen["published"] == ""


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code", "mentions"),
    [
        ({"json": {"query": ""}}, 422, "invalid_query", "empty"),
        ({"json": {"query": "   \n\t"}}, 422, "invalid_query", "whitespace"),
        ({"json": {"query": "x" * 1001}}, 422, "query_too_long", "1000"),
        ({"json": {"query": "ports", "k": 0}}, 422, "invalid_request", "k"),
        ({"json": {"query": "ports", "k": 51}}, 422, "k_out_of_range", "50"),
        ({"json": {"query": "ports", "k": "many"}}, 422, "invalid_request", "k"),
        ({"json": {"query": "ports", "mode": "magic"}}, 422, "invalid_request", "mode"),
        ({"json": {"k": 3}}, 422, "invalid_request", "query"),
        ({"json": {"query": "ports", "bogus": 1}}, 422, "invalid_request", "bogus"),
        ({"json": ["not", "an", "object"]}, 422, "invalid_request", "body"),
        (
            {"content": b'{"query": "ports",', "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
            "JSON",
        ),
        (
            {"content": b'{"query": "\\ud800 ports"}', "headers": {"content-type": "application/json"}},
            422,
            "invalid_query",
            "Unicode",
        ),
    ],
)
def test_search_rejects_bad_input(
    client: TestClient, request_kwargs: dict[str, Any], status: int, code: str, mentions: str
) -> None:
    before = client.get("/healthz").json()
    response = client.post("/search", **request_kwargs)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert mentions in error["message"]
    assert client.get("/healthz").json() == before


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": ""}, "invalid_query"),
        ({"q": "ports", "k": "0"}, "invalid_request"),
        ({"q": "ports", "k": "999"}, "k_out_of_range"),
        ({"q": "ports", "mode": "dense2"}, "invalid_request"),
        ({}, "invalid_request"),
    ],
)
def test_search_get_rejects_bad_input(client: TestClient, params: dict[str, str], code: str) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


def test_unknown_document_and_route(client: TestClient) -> None:
    missing = client.get("/documents/no-such-doc")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "document_not_found",
        "message": "no document with id 'no-such-doc'",
        "details": [],
        "request_id": missing.headers["x-request-id"],  # every error body names its request
    }
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"
    assert client.put("/search").status_code == 405


def test_openapi_documents_every_route_and_field(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation_ids = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert operation.get("operationId"), (method, path)
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (method, path, parameter["name"])
            operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids))
    for name, schema in spec["components"]["schemas"].items():
        if name in {"HTTPValidationError", "ValidationError"}:
            continue
        for field, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"


def test_the_loaded_index_and_model_are_kept_out_of_garbage_collection(fake_engine: Engine) -> None:
    """A full collection would otherwise scan them all, a pause of ~0.2 s every few dozen queries."""
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(fake_engine.settings, engine=fake_engine)) as client:
        assert gc.get_freeze_count() > 0
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0  # returned to the collector when the app stops
