"""`POST /search/documents` with the fake embedder: shape, citations, errors, and the BEIR eval's
document modes over HTTP giving the same rankings as in-process."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from eval.backends import DOCUMENT_FUSION_MODES, HttpBackend, InProcessBackend
from index.search.candidates import dense_candidates, lexical_candidates
from index.search.document_ranking import rank_documents
from index.search.modes import Mode
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION

QUESTIONS = [EXAMPLE_QUESTION, "security guarantees for Iran", "ECO economic cooperation connectivity"]


@pytest.mark.parametrize("feedback", [False, True])
def test_documents_ranked_with_their_closest_passage(
    client: TestClient, fake_engine: Engine, feedback: bool
) -> None:
    response = client.post(
        "/search/documents", json={"query": EXAMPLE_QUESTION, "k": 3, "feedback": feedback}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == EXAMPLE_QUESTION and body["feedback"] is feedback
    assert body["index_version"] == client.get("/healthz").json()["index_version"]
    results = body["results"]
    ids = [r["document"]["id"] for r in results]
    assert len(ids) == len(set(ids)) == 3  # each document once; the corpus has three
    assert [r["rank"] for r in results] == [1, 2, 3]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(1.0)
    retriever = fake_engine.retriever
    vector = retriever.embedder.embed_batch([EXAMPLE_QUESTION])[0]
    expected = rank_documents(retriever, EXAMPLE_QUESTION, vector, 300, feedback)
    assert ids == [d.document_id for d in expected]
    # Each document is cited by its best passage in /search's own ranking.
    passages = [retriever.reader.chunk(row) for row, _ in retriever.rank(EXAMPLE_QUESTION, Mode.HYBRID, 300)]
    for result in results:
        best = next(chunk for chunk in passages if chunk.document_id == result["document"]["id"])
        assert result["passage"]["chunk_id"] == best.id
        assert_cited(client, result)


def assert_cited(client: TestClient, result: dict[str, Any]) -> None:
    text = client.get(f"/documents/{result['document']['id']}").json()["text"]
    passage, answer = result["passage"], result["answer"]
    assert text[passage["start"] : passage["end"]] == passage["text"]
    assert passage["chunk_id"] == f"{result['document']['id']}#{passage['start']}-{passage['end']}"
    assert text[answer["start"] : answer["end"]] == answer["text"]
    assert passage["start"] <= answer["start"] < answer["end"] <= passage["end"]


def test_k_limits_the_documents(client: TestClient) -> None:
    body = client.post("/search/documents", json={"query": EXAMPLE_QUESTION, "k": 1}).json()
    assert len(body["results"]) == 1 and body["feedback"] is False


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "  "}, "invalid_query"),
        ({"query": "ports", "k": 0}, "invalid_request"),
        ({"query": "ports", "k": 999}, "k_out_of_range"),
        ({"query": "ports", "feedback": "maybe"}, "invalid_request"),
        ({"query": "ports", "mode": "hybrid"}, "invalid_request"),  # unknown field
        ({"k": 3}, "invalid_request"),
    ],
)
def test_bad_requests_are_422_and_change_nothing(client: TestClient, body: dict[str, Any], code: str) -> None:
    before = client.get("/healthz").json()
    response = client.post("/search/documents", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert client.get("/healthz").json() == before


@pytest.mark.parametrize("mode", DOCUMENT_FUSION_MODES)
def test_eval_document_modes_over_http_match_in_process(
    client: TestClient, fake_engine: Engine, mode: str
) -> None:
    local = InProcessBackend(fake_engine.retriever).document_rankings(QUESTIONS, mode, 3, progress=False)  # type: ignore[arg-type]
    remote = HttpBackend("", client=client).document_rankings(QUESTIONS, mode, 3, progress=False)  # type: ignore[arg-type]
    assert [r.ids for r in remote] == [r.ids for r in local]
    for over_http, in_process in zip(remote, local, strict=True):
        assert over_http.scores == pytest.approx(in_process.scores)


@pytest.mark.parametrize("question", QUESTIONS)
def test_fuse_of_the_two_candidate_lists_is_the_hybrid_ranking(fake_engine: Engine, question: str) -> None:
    retriever = fake_engine.retriever
    vector = retriever.embedder.embed_batch([question])[0]
    dense = dense_candidates(retriever.reader, vector, 20)
    options = retriever.options
    lexical = lexical_candidates(retriever.query(question, vector), 20, options.bm25_k1, options.bm25_b)
    assert dense.ranked() == retriever.rank(question, Mode.DENSE, 20, query_vector=vector)
    assert lexical.ranked() == retriever.rank(question, Mode.BM25, 20, query_vector=vector)
    assert retriever.ordered(
        Mode.HYBRID, retriever.query(question, vector), dense, lexical
    ) == retriever.rank(question, Mode.HYBRID, 20, query_vector=vector)
