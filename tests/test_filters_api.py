"""Filters over HTTP: `POST /search` and `/search/documents` take `filter` (Qdrant's shape), `GET
/search` the common conditions as parameters; every result matches, and a filter that breaks a
rule is a 422 that names the problem and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import Document
from service.engine import Engine

QUESTION = "security cooperation between Iran and Pakistan"
TOPICS = {
    3: "border guards met in Taftan to plan joint patrols against smugglers",
    10: "ministers signed a memorandum on intelligence sharing after the summit",
    17: "naval officers held exercises near Gwadar and Chabahar ports",
    24: "parliament delegations debated counter-terrorism funding in Islamabad",
}
DATED = [
    Document(
        id=f"dawn-{day}",
        title=f"Dawn report {day}",
        text=f"Security cooperation between Iran and Pakistan: {TOPICS[day]}.",
        source="Dawn",
        published=f"2025-11-{day:02d}",
        metadata={"section": "region" if day % 2 else "world", "words": day * 100},
    )
    for day in (3, 10, 17, 24)
]


@pytest.fixture
def dated_client(fake_engine: Engine, client: TestClient) -> TestClient:
    fake_engine.upsert(DATED)
    return client


def search(client: TestClient, filter: dict[str, Any] | None, **body: Any) -> dict[str, Any]:
    response = client.post("/search", json={"query": QUESTION, "k": 10, "filter": filter, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ids(result: dict[str, Any]) -> list[str]:
    return [item["document"]["id"] for item in result["results"]]


def test_post_search_answers_only_from_matching_documents(dated_client: TestClient) -> None:
    result = search(dated_client, {"must": [{"key": "source", "match": {"value": "Nournews"}}]})
    assert ids(result) and set(ids(result)) == {"nournews-larijani-visit"}
    assert result["filter"] == {"must": [{"key": "source", "match": {"value": "Nournews"}}]}
    everything = search(dated_client, None)
    assert everything["filter"] is None and len(set(ids(everything))) > 1


def test_dates_metadata_and_boolean_clauses(dated_client: TestClient) -> None:
    november = {"key": "published", "range": {"gte": "2025-11-10", "lte": "2025-11-17"}}
    assert set(ids(search(dated_client, {"must": [november]}))) == {"dawn-10", "dawn-17"}
    region = {"key": "metadata.section", "match": {"value": "region"}}
    assert set(ids(search(dated_client, {"must": [region]}))) == {"dawn-3", "dawn-17"}
    assert set(ids(search(dated_client, {"must": [{"key": "metadata.words", "range": {"gt": 1000}}]}))) == {
        "dawn-17",
        "dawn-24",
    }
    either = {"should": [region, {"has_id": ["thepenpk-defence-pact"]}]}
    assert set(ids(search(dated_client, either))) == {"dawn-3", "dawn-17", "thepenpk-defence-pact"}
    undated = {
        "must": [{"is_empty": {"key": "published"}}],
        "must_not": [{"key": "source", "match": {"any": ["Nournews"]}}],
    }
    assert set(ids(search(dated_client, undated))) == {
        "irandaily-security-dialogues",
        "thepenpk-defence-pact",
    }
    nested = {"must": [{"must_not": [region]}, {"key": "source", "match": {"value": "Dawn"}}]}
    assert set(ids(search(dated_client, nested))) == {"dawn-10", "dawn-24"}


def test_a_filter_nothing_matches_answers_nothing(dated_client: TestClient) -> None:
    result = search(dated_client, {"must": [{"key": "author", "match": {"value": "Nobody"}}]})
    assert result["results"] == [] and result["answerable"] is False


def test_get_search_takes_the_common_conditions(dated_client: TestClient) -> None:
    response = dated_client.get(
        "/search",
        params=[
            ("q", QUESTION),
            ("k", "10"),
            ("source", "Dawn"),
            ("published_after", "2025-11-10"),
            ("published_before", "2025-11-20"),
        ],
    )
    assert response.status_code == 200, response.text
    assert set(ids(response.json())) == {"dawn-10", "dawn-17"}
    assert response.json()["filter"]["must"][1] == {
        "key": "published",
        "range": {"gte": "2025-11-10", "lte": "2025-11-20"},
    }
    repeated = dated_client.get(
        "/search",
        params=[("q", QUESTION), ("k", "10"), ("document_id", "dawn-3"), ("document_id", "dawn-24")],
    )
    assert set(ids(repeated.json())) == {"dawn-3", "dawn-24"}
    authors = dated_client.get("/search", params={"q": QUESTION, "author": "Ahmed Ali"})
    assert set(ids(authors.json())) == {"thepenpk-defence-pact"}


def test_document_search_and_llm_routes_take_the_filter(dated_client: TestClient) -> None:
    dawn = {"must": [{"key": "source", "match": {"value": "Dawn"}}]}
    documents = dated_client.post("/search/documents", json={"query": QUESTION, "filter": dawn}).json()
    assert {item["document"]["id"] for item in documents["results"]} == {d.id for d in DATED}
    assert documents["filter"] == dawn
    anthropic = dated_client.post("/search/anthropic", json={"query": QUESTION, "filter": dawn, "k": 10})
    assert anthropic.status_code == 200, anthropic.text
    sources = {block["source"] for block in anthropic.json()["content"]}
    assert sources and all("dawn-" in source for source in sources)


@pytest.mark.parametrize(
    ("filter", "named"),
    [
        ({"must": [{"key": "sorce", "match": {"value": "Dawn"}}]}, "unknown field 'sorce'"),
        ({"must": [{"key": "source", "match": {"eq": "Dawn"}}]}, "eq"),
        ({"must": [{"key": "source", "equals": "Dawn"}]}, "equals"),
        ({"must": [{"key": "published", "range": {"gte": "2025-13-01"}}]}, "'2025-13-01' is not a date"),
        ({"must": [{"key": "published", "range": {"gte": 2025}}]}, "ISO 8601 dates"),
        ({"must": [{"key": "title", "range": {"gte": 1}}]}, "field 'title' is text"),
        ({"must": [{"key": "source"}]}, "exactly one of `match` or `range`"),
        ({"must": [{"has_id": []}]}, "has_id"),
        ({"always": []}, "always"),
    ],
)
def test_a_broken_filter_is_a_422_naming_the_problem(
    dated_client: TestClient, filter: dict[str, Any], named: str
) -> None:
    response = dated_client.post("/search", json={"query": QUESTION, "filter": filter})
    assert response.status_code == 422, response.text
    assert named in response.text
    assert response.json()["error"]["code"]


@pytest.mark.parametrize("params", [{"published_after": "yesterday"}, {"published_before": "2025-02-30"}])
def test_get_search_refuses_a_bad_date(dated_client: TestClient, params: dict[str, str]) -> None:
    response = dated_client.get("/search", params={"q": QUESTION, **params})
    assert response.status_code == 422
    assert next(iter(params)) in response.text and "is not a date" in response.text


def test_a_question_that_states_a_time_range_is_searched_within_it(dated_client: TestClient) -> None:
    question = "What did officials say about security cooperation in November 2025?"
    result = search(dated_client, None, query=question)
    assert set(ids(result)) == {d.id for d in DATED}
    assert result["filter_from_question"] == {
        "key": "published",
        "range": {"gte": "2025-11-01", "lte": "2025-11-30"},
        "phrase": "in November 2025",
        "start": question.index("in November"),
        "end": len(question) - 1,
    }
    assert result["filter"] is None  # the request's own filter: none
    whole = search(dated_client, None, query=question, dates_from_question=False)
    assert whole["filter_from_question"] is None and set(ids(whole)) - {d.id for d in DATED}
    # Relative dates are read as of the request's date; both filters hold together.
    this_month = "security cooperation this month"
    later = search(
        dated_client,
        {"must": [{"key": "metadata.section", "match": {"value": "world"}}]},
        query=this_month,
        as_of="2025-11-20",
    )
    assert set(ids(later)) == {"dawn-10", "dawn-24"}
    assert later["filter_from_question"]["range"] == {"gte": "2025-11-01", "lte": "2025-11-30"}
    get = dated_client.get("/search", params={"q": this_month, "as_of": "2025-12-02", "k": 10}).json()
    assert (
        get["filter_from_question"]["range"] == {"gte": "2025-12-01", "lte": "2025-12-31"}
        and get["results"] == []
    )


def test_a_year_in_a_name_is_not_a_time_range(dated_client: TestClient) -> None:
    result = search(dated_client, None, query="What does the 2025 agreement on security cooperation say?")
    found = set(ids(result))
    assert result["filter_from_question"] is None
    assert found & {d.id for d in DATED} and found - {d.id for d in DATED}


def test_without_dated_documents_the_question_is_searched_whole(client: TestClient) -> None:
    result = search(client, None, query="security cooperation in November 2025")
    assert result["filter_from_question"] is None and result["results"]


def test_a_bad_as_of_is_a_422(dated_client: TestClient) -> None:
    response = dated_client.post("/search", json={"query": QUESTION, "as_of": "next week"})
    assert response.status_code == 422 and "as_of 'next week' is not a date" in response.text


def test_document_search_keeps_to_the_question_dates(dated_client: TestClient) -> None:
    body = {"query": "security cooperation since 15 November 2025", "as_of": "2025-12-01"}
    result = dated_client.post("/search/documents", json=body).json()
    assert {item["document"]["id"] for item in result["results"]} == {"dawn-17", "dawn-24"}
    assert result["filter_from_question"]["range"] == {"gte": "2025-11-15"}
