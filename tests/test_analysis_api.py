"""Keyword search through the HTTP API (fake embedder) on text the analyser normalises.

A document added with decomposed accents, a soft hyphen or Chinese text is found in bm25 mode
by the plain spelling of its words, and every passage still cites the stored text exactly (the
analyser never touches stored text or offsets). A query the analyser once failed on (a lone
surrogate) is not a server error.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.engine import Engine
from tests.test_api import assert_citations_hold

RESUME = {
    "id": "cv-advice",
    "title": "Writing a CV",
    "text": "Her re\u0301sume\u0301 listed three languages and a decade of shipping work.\n\n"
    "Recruiters said they read it twice before calling.",
}
HIPPO = {
    "id": "zoo-news",
    "title": "Zoo news",
    "text": "The zoo's hippo\u00adpotamus calf was named after a river.\n\n"
    "Keepers weighed the calf every morning for a month.",
}
TRADE = {
    "id": "cn-trade",
    "title": "贸易新闻",
    "text": "中国与巴基斯坦签署了贸易协定。\n\n双方同意扩大港口合作。",
}


def bm25_search(client: TestClient, query: str) -> dict[str, Any]:
    response = client.post("/search", json={"query": query, "mode": "bm25", "k": 3})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("document", "query", "matched"),
    [
        (RESUME, "résumé", "résumé"),
        (RESUME, "RÉSUMÉ", "résumé"),
        (HIPPO, "hippopotamus", "hippopotamus"),
        (TRADE, "贸易协定", "协定"),
        (TRADE, "贸易", "贸易"),
    ],
)
def test_keyword_search_finds_normalised_words(
    client: TestClient, document: dict[str, str], query: str, matched: str
) -> None:
    assert client.post("/documents", json=document).status_code == 200
    body = bm25_search(client, query)
    top = body["results"][0]
    assert top["document"]["id"] == document["id"]
    assert matched in top["explain"]["matched_terms"]
    assert_citations_hold(client, body)
    # The stored text is the text sent, soft hyphen and combining accents included.
    stored = client.get(f"/documents/{document['id']}").json()["text"]
    assert stored == document["text"]
    assert top["text"] == stored[top["start"] : top["end"]]
    assert top["text"] in document["text"]


def test_chinese_query_does_not_match_unrelated_english(client: TestClient) -> None:
    assert client.post("/documents", json=TRADE).status_code == 200
    ids = [result["document"]["id"] for result in bm25_search(client, "贸易协定")["results"]]
    assert ids == ["cn-trade"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/search", b'{"query": "\\ud800 peace", "mode": "bm25"}'),
        ("/search", b'{"query": "\\ud800 peace", "mode": "hybrid"}'),
        ("/search", b'{"query": "peace \\udfff"}'),
        ("/search/documents", b'{"query": "\\ud800 peace"}'),
        ("/search/anthropic", b'{"query": "\\ud800 peace"}'),
        ("/search/openai", b'{"query": "\\ud800 peace"}'),
    ],
)
def test_query_with_a_lone_surrogate_is_no_server_error(client: TestClient, path: str, body: bytes) -> None:
    # Raw bytes, so that the escape reaches the server as a lone surrogate in the parsed query.
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500


def test_engine_searches_with_a_lone_surrogate(fake_engine: Engine) -> None:
    # Below the HTTP layer, whatever it decides about invalid Unicode: the analyser drops the
    # surrogate and the rest of the query still finds its words.
    outcome = fake_engine.search("\ud800 Peace Pipeline", k=3, mode="bm25")
    assert outcome.hits
    assert {"peace", "pipeline"} <= set(outcome.hits[0].explain.matched_terms)
