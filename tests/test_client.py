"""The Python client and the LangChain retriever against a real running server (fake embedder)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.documents import Document

from service.app import create_app
from service.client import RagClient, RagClientError
from service.engine import Engine
from service.langchain_retriever import RagRetriever
from tests.conftest import EXAMPLE_QUESTION
from tests.live_server import free_port, live_server


@pytest.fixture
def rag(fake_engine: Engine) -> Iterator[RagClient]:
    with (
        live_server(create_app(fake_engine.settings, engine=fake_engine)) as base_url,
        RagClient(base_url) as client,
    ):
        yield client


def test_search_returns_typed_results_with_exact_citations(rag: RagClient) -> None:
    response = rag.search("Peace Pipeline maritime", k=2, mode="bm25")
    assert response.mode == "bm25" and len(response.results) == 2
    top = response.results[0]
    assert "Peace Pipeline" in top.answer.text
    document = rag.document(top.document.id)
    assert document.text[top.start : top.end] == top.text
    assert document.text[top.answer.start : top.answer.end] == top.answer.text
    assert rag.health().documents == len(rag.documents().documents) == 3


def test_document_search_through_the_client(rag: RagClient) -> None:
    response = rag.search_documents("Peace Pipeline maritime initiatives", k=2, feedback=True)
    assert response.feedback is True and len(response.results) == 2
    top = response.results[0]
    assert top.document.id == "nournews-larijani-visit"
    text = rag.document(top.document.id).text
    assert text[top.passage.start : top.passage.end] == top.passage.text
    assert text[top.answer.start : top.answer.end] == top.answer.text
    with pytest.raises(RagClientError) as too_many:
        rag.search_documents("ports", k=999)
    assert (too_many.value.status, too_many.value.code) == (422, "k_out_of_range")


def test_llm_formats_through_the_client(rag: RagClient) -> None:
    anthropic = rag.search_anthropic("Peace Pipeline maritime", k=1, mode="bm25")
    assert anthropic.content[0].type == "search_result"
    assert any("Peace Pipeline" in block.text for block in anthropic.content[0].content)
    openai = rag.search_openai("Peace Pipeline maritime", k=1, mode="bm25", context=1)
    assert "Peace Pipeline" in openai.output


def test_api_errors_become_named_exceptions(rag: RagClient) -> None:
    with pytest.raises(RagClientError) as empty:
        rag.search("   ")
    assert (empty.value.status, empty.value.code) == (422, "invalid_query")
    with pytest.raises(RagClientError) as missing:
        rag.document("no-such-doc")
    assert (missing.value.status, missing.value.code) == (404, "document_not_found")
    assert "no-such-doc" in missing.value.message


def test_unreachable_server() -> None:
    with (
        RagClient(f"http://127.0.0.1:{free_port()}", timeout=5) as client,
        pytest.raises(RagClientError) as error,
    ):
        client.health()
    assert error.value.code == "unreachable" and error.value.status is None


def test_api_key_is_sent_as_bearer() -> None:
    with RagClient("http://127.0.0.1:1", api_key="secret-key") as client:
        assert client._http.headers["Authorization"] == "Bearer secret-key"


def test_langchain_retriever_documents_carry_citations(rag: RagClient) -> None:
    retriever = RagRetriever(client=rag, k=3, mode="bm25")
    documents = retriever.invoke(EXAMPLE_QUESTION)
    assert len(documents) == 3 and all(isinstance(d, Document) for d in documents)
    top = documents[0]
    meta = top.metadata
    assert top.id == meta["id"] == f"{meta['document_id']}#{meta['start']}-{meta['end']}"
    assert rag.document(meta["document_id"]).text[meta["start"] : meta["end"]] == top.page_content
    assert meta["answer"] in top.page_content and meta["answer_field"] == "text"
    assert (
        top.page_content[meta["answer_start"] - meta["start"] : meta["answer_end"] - meta["start"]]
        == meta["answer"]
    )
    assert meta["citation"].endswith(f"({meta['document_id']}, characters {meta['start']}-{meta['end']})")
    assert {"title", "source", "url", "published", "score", "rank", "answerable", "index_version"} <= set(
        meta
    )
    assert [d.metadata["rank"] for d in documents] == [1, 2, 3]
