"""The filter on every surface besides `POST /search`: the MCP `search` tool, the Python client,
the LangChain retriever and the OpenAI tool. Each takes the same filter (Qdrant's shape, or the
client's `SearchFilter`), answers only from the documents it matches, says which filter applied,
and refuses a broken one with a message naming the problem. `rag ask` is in tests/test_cli_filters.py,
the web page in tests/test_web_browser.py. Fake embedder; the corpus of tests/test_filters_api.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from mcp import Client
from pydantic import ValidationError

from service.app import create_app
from service.client import RagClient, RagClientError
from service.engine import Engine
from service.filter_schema import SearchFilter
from service.langchain_retriever import RagRetriever
from tests.live_server import live_server
from tests.test_filters_api import DATED, QUESTION

DAWN = {"must": [{"key": "source", "match": {"value": "Dawn"}}]}
MID_NOVEMBER = {"must": [{"key": "published", "range": {"gte": "2025-11-10", "lte": "2025-11-17"}}]}
BROKEN = {"must": [{"key": "sorce", "match": {"value": "Dawn"}}]}
DAWN_IDS = {document.id for document in DATED}


@pytest.fixture
def base_url(fake_engine: Engine) -> Iterator[str]:
    fake_engine.upsert(DATED)
    with live_server(create_app(fake_engine.settings, engine=fake_engine)) as url:
        yield url


@pytest.fixture
def rag(base_url: str) -> Iterator[RagClient]:
    with RagClient(base_url) as client:
        yield client


def call_search(base_url: str, *calls: dict[str, Any]) -> list[Any]:
    async def run() -> list[Any]:
        async with Client(f"{base_url}/mcp") as client:
            return [await client.call_tool("search", {"question": QUESTION, "k": 10, **c}) for c in calls]

    return anyio.run(run)


def passage_documents(result: Any) -> set[str]:
    assert not result.is_error, result.content
    return {passage["document_id"] for passage in result.structured_content["passages"]}


def test_mcp_search_takes_a_filter_and_says_which_applied(base_url: str) -> None:
    dawn, november, unfiltered = call_search(base_url, {"filter": DAWN}, {"filter": MID_NOVEMBER}, {})
    assert passage_documents(dawn) == DAWN_IDS
    assert dawn.structured_content["filter"] == DAWN
    assert passage_documents(november) == {"dawn-10", "dawn-17"}
    assert passage_documents(unfiltered) - DAWN_IDS
    assert unfiltered.structured_content["filter"] is None


def test_mcp_search_reads_dates_from_the_question_unless_told_not_to(base_url: str) -> None:
    question = "security cooperation this month"
    within, whole = call_search(
        base_url,
        {"question": question, "as_of": "2025-11-20"},
        {"question": question, "as_of": "2025-11-20", "dates_from_question": False},
    )
    assert passage_documents(within) == DAWN_IDS
    assert within.structured_content["filter_from_question"]["range"] == {
        "gte": "2025-11-01",
        "lte": "2025-11-30",
    }
    assert whole.structured_content["filter_from_question"] is None
    assert passage_documents(whole) - DAWN_IDS


def test_mcp_search_refuses_a_broken_filter_naming_the_problem(base_url: str) -> None:
    broken, bad_date, bad_as_of = call_search(
        base_url,
        {"filter": BROKEN},
        {"filter": {"must": [{"key": "published", "range": {"gte": "2025-13-01"}}]}},
        {"as_of": "next week"},
    )
    assert broken.is_error and "unknown field 'sorce'" in broken.content[0].text
    assert bad_date.is_error and "'2025-13-01' is not a date" in bad_date.content[0].text
    assert bad_as_of.is_error and "as_of 'next week' is not a date" in bad_as_of.content[0].text


def test_mcp_search_shows_models_the_filter_shape(base_url: str) -> None:
    async def listing() -> Any:
        async with Client(f"{base_url}/mcp") as client:
            return next(tool for tool in (await client.list_tools()).tools if tool.name == "search")

    schema = anyio.run(listing).input_schema
    assert {"filter", "dates_from_question", "as_of"} <= set(schema["properties"])
    shape = schema["$defs"]["SearchFilter"]
    assert set(shape["properties"]) == {"must", "should", "must_not"}
    assert "metadata.<key>" in schema["$defs"]["FieldCondition"]["properties"]["key"]["description"]


def test_client_search_takes_a_dict_or_a_search_filter(rag: RagClient) -> None:
    as_dict = rag.search(QUESTION, k=10, filter=DAWN)
    as_model = rag.search(QUESTION, k=10, filter=SearchFilter.model_validate(MID_NOVEMBER))
    assert {item.document.id for item in as_dict.results} == DAWN_IDS and as_dict.filter == DAWN
    assert {item.document.id for item in as_model.results} == {"dawn-10", "dawn-17"}
    assert as_model.filter == MID_NOVEMBER
    documents = rag.search_documents(QUESTION, filter=MID_NOVEMBER)
    assert {item.document.id for item in documents.results} == {"dawn-10", "dawn-17"}


def test_client_question_dates_and_as_of(rag: RagClient) -> None:
    question = "security cooperation this month"
    within = rag.search(question, k=10, as_of=dt.date(2025, 11, 20))
    assert {item.document.id for item in within.results} == DAWN_IDS
    assert within.filter_from_question is not None and within.filter_from_question["phrase"] == "this month"
    whole = rag.search(question, k=10, as_of="2025-11-20", dates_from_question=False)
    assert whole.filter_from_question is None
    documents = rag.search_documents(question, as_of="2025-12-02")
    assert documents.results == [] and documents.filter_from_question is not None


def test_client_reports_a_broken_filter(rag: RagClient) -> None:
    with pytest.raises(RagClientError) as raised:
        rag.search(QUESTION, filter=BROKEN)
    assert raised.value.status == 422 and "unknown field 'sorce'" in raised.value.message
    with pytest.raises(TypeError, match="fitler"):
        rag.search(QUESTION, fitler=DAWN)  # type: ignore[call-arg]


def test_langchain_retriever_filter_field_and_per_call_override(rag: RagClient) -> None:
    retriever = RagRetriever(client=rag, k=10, filter=DAWN)
    assert {doc.metadata["document_id"] for doc in retriever.invoke(QUESTION)} == DAWN_IDS
    override = retriever.invoke(QUESTION, filter=MID_NOVEMBER)
    assert {doc.metadata["document_id"] for doc in override} == {"dawn-10", "dawn-17"}
    later = anyio.run(lambda: retriever.ainvoke(QUESTION, filter={"must": [{"has_id": ["dawn-24"]}]}))
    assert {doc.metadata["document_id"] for doc in later} == {"dawn-24"}
    dated = RagRetriever(client=rag, k=10, as_of="2025-11-20")
    assert {
        doc.metadata["document_id"] for doc in dated.invoke("security cooperation this month")
    } == DAWN_IDS
    with pytest.raises(ValidationError, match="unknown field 'sorce'"):
        RagRetriever(client=rag, filter=BROKEN)


def test_openai_tool_declares_the_filter_and_its_route_applies_it(base_url: str, rag: RagClient) -> None:
    tools = httpx.get(f"{base_url}/search/openai/tool").json()
    parameters = tools["chat_completions"]["function"]["parameters"]
    assert parameters == tools["responses"]["parameters"]
    jsonschema.Draft202012Validator.check_schema(parameters)
    checker = jsonschema.Draft202012Validator(parameters)
    for good in (DAWN, MID_NOVEMBER, {"should": [{"must_not": [{"is_empty": {"key": "author"}}]}]}):
        checker.validate({"query": QUESTION, "filter": good})  # every $ref resolves, nesting too
    assert not checker.is_valid({"query": QUESTION, "filter": {"always": []}})
    # OpenAI's schema subset: anyOf, never oneOf.
    assert "oneOf" not in json.dumps(parameters) and "anyOf" in json.dumps(parameters)

    output = json.loads(rag.search_openai(QUESTION, k=10, filter=DAWN).output)
    assert {passage["passage_id"].split("#")[0] for passage in output["passages"]} == DAWN_IDS
    assert output["filter"] == DAWN and output["filter_from_question"] is None

    # The question-date options the tool declares are the ones its route applies.
    assert {"dates_from_question", "as_of"} <= set(parameters["properties"])
    question = "security cooperation this month"
    call = {"query": question, "k": 10, "as_of": "2025-11-20"}
    checker.validate(call | {"dates_from_question": False})
    within = json.loads(rag.search_openai(question, k=10, as_of="2025-11-20").output)
    assert {passage["passage_id"].split("#")[0] for passage in within["passages"]} == DAWN_IDS
    assert within["filter_from_question"]["range"] == {"gte": "2025-11-01", "lte": "2025-11-30"}
    whole = json.loads(
        rag.search_openai(question, k=10, as_of="2025-11-20", dates_from_question=False).output
    )
    assert whole["filter_from_question"] is None
    assert {passage["passage_id"].split("#")[0] for passage in whole["passages"]} - DAWN_IDS


def test_anthropic_blocks_keep_to_the_filter_and_say_so(rag: RagClient) -> None:
    found = rag.search_anthropic(QUESTION, k=10, filter=MID_NOVEMBER)
    assert {passage.document_id for passage in found.passages} == {"dawn-10", "dawn-17"}
    assert found.filter == MID_NOVEMBER
