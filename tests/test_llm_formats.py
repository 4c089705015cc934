"""LLM formats against the official SDKs' own types: Anthropic `search_result` blocks in a
`tool_result`, and OpenAI function tool definitions and results (Chat Completions and Responses).
Also the Open WebUI tool-server side of the OpenAPI spec and CORS. Fake embedder, real corpus."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pytest
from anthropic.types import MessageParam, SearchResultBlockParam, TextBlockParam, ToolResultBlockParam
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionToolMessageParam
from openai.types.responses import FunctionToolParam
from openai.types.responses.response_input_param import FunctionCallOutput
from pydantic import TypeAdapter

from service.app import create_app
from service.engine import Engine
from service.llm_formats import (
    anthropic_tool_result,
    openai_chat_tool,
    openai_function_call_output,
    openai_responses_tool,
    openai_tool_message,
)
from tests.conftest import make_settings

QUESTION = "Peace Pipeline joint port and maritime initiatives"


def materialised(value: Any) -> Any:
    """Walk a validated value: pydantic validates `Iterable[...]` fields lazily, on iteration."""
    if isinstance(value, Mapping):
        return {key: materialised(item) for key, item in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [materialised(item) for item in value]
    return value


def validated(typed_dict: Any, value: Any) -> Any:
    adapter = TypeAdapter(typed_dict)  # kept alive while its lazy iterators are walked
    result = materialised(adapter.validate_python(value))
    del adapter
    return result


def assert_only_known_keys(typed_dict: Any, value: Mapping[str, Any]) -> None:
    known = typed_dict.__required_keys__ | typed_dict.__optional_keys__
    assert set(value) <= known, set(value) - known
    assert typed_dict.__required_keys__ <= set(value)


def test_anthropic_route_returns_search_result_blocks(client: TestClient) -> None:
    body = client.post("/search/anthropic", json={"query": QUESTION, "k": 3, "mode": "bm25"}).json()
    assert body["answerable"] is True
    assert len(body["content"]) == len(body["passages"]) == 3
    texts: dict[str, str] = {}
    for block, spans in zip(body["content"], body["passages"], strict=True):
        assert validated(SearchResultBlockParam, block) == block
        assert_only_known_keys(SearchResultBlockParam, block)
        for text_block in block["content"]:
            assert_only_known_keys(TextBlockParam, text_block)
        assert block["citations"] == {"enabled": True}
        doc_id = spans["document_id"]
        text = texts.setdefault(doc_id, client.get(f"/documents/{doc_id}").json()["text"])
        # Each text block is one sentence, and the spans map it back to the exact characters.
        assert [text[s:e] for s, e in spans["block_spans"]] == [b["text"] for b in block["content"]]
        start, end = (int(x) for x in spans["passage_id"].split("#")[1].split("-"))
        assert spans["block_spans"][0][0] == start and spans["block_spans"][-1][1] == end
    top = body["content"][0]
    assert top["title"] == "Larijani's visit to Pakistan (Nournews commentary) - Nournews"
    assert any("Peace Pipeline" in b["text"] and b["text"].endswith("initiatives.") for b in top["content"])
    assert len(top["content"]) > 1


def test_anthropic_tool_result_fits_a_messages_request(fake_engine: Engine) -> None:
    outcome = fake_engine.search(QUESTION, 2, "bm25")
    tool_result = anthropic_tool_result(outcome, "toolu_01")
    assert validated(ToolResultBlockParam, tool_result) == tool_result
    message = {"role": "user", "content": [tool_result]}
    assert validated(MessageParam, message) == message
    kinds = [block["type"] for block in tool_result["content"]]
    assert kinds == ["text", "search_result", "search_result"]


def test_no_confident_answer_note_reaches_the_model(fake_engine: Engine) -> None:
    # The fake embedder's confidence is arbitrary, so the flag is set here; the real model's
    # unanswerable questions are covered by the browser and integration tests.
    outcome = replace(fake_engine.search("zebra quantum sourdough", 1, "dense"), answerable=False)
    note = anthropic_tool_result(outcome, "toolu_02")["content"][0]["text"]
    assert "does not answer" in note
    assert json.loads(openai_tool_message(outcome, "call_2")["content"])["answerable"] is False


def test_openai_tool_definitions_and_results(client: TestClient, fake_engine: Engine) -> None:
    definitions = client.get("/search/openai/tool").json()
    assert definitions["chat_completions"] == openai_chat_tool(fake_engine.settings.max_k)
    assert validated(
        ChatCompletionFunctionToolParam, openai_chat_tool(fake_engine.settings.max_k)
    ) == openai_chat_tool(fake_engine.settings.max_k)
    assert validated(
        FunctionToolParam, openai_responses_tool(fake_engine.settings.max_k)
    ) == openai_responses_tool(fake_engine.settings.max_k)
    assert definitions["responses"] == openai_responses_tool(fake_engine.settings.max_k)

    outcome = fake_engine.search(QUESTION, 2, "bm25")
    message = openai_tool_message(outcome, "call_1")
    assert validated(ChatCompletionToolMessageParam, message) == message
    item = openai_function_call_output(outcome, "call_1")
    assert validated(FunctionCallOutput, item) == item

    routed = client.post("/search/openai", json={"query": QUESTION, "k": 2, "mode": "bm25"}).json()
    assert routed["output"] == message["content"]
    payload = json.loads(routed["output"])
    top = payload["passages"][0]
    assert "Peace Pipeline" in top["answer"]["text"]
    assert top["citation"].startswith('"Larijani')
    assert top["citation"].endswith(f"characters {top['passage_id'].split('#')[1]})")


def test_llm_routes_reject_bad_input_like_search(client: TestClient) -> None:
    for path in ("/search/anthropic", "/search/openai"):
        response = client.post(path, json={"query": " ", "k": 2})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_query"
        assert client.post(path, json={"query": "ports", "context": 4}).status_code == 422


def test_openapi_is_a_tool_server_spec(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operations = {op["operationId"]: op for methods in spec["paths"].values() for op in methods.values()}
    assert {"search_passages", "search_passages_anthropic", "search_passages_openai"} <= set(operations)
    context = spec["components"]["schemas"]["SearchRequest"]["properties"]["context"]
    assert context["maximum"] == 3 and context["minimum"] == 0 and context["description"]
    assert "/mcp" not in spec["paths"] and "/" not in spec["paths"]  # not API operations


@pytest.mark.parametrize("origins", [[], ["http://webui.example:3000"]])
def test_cors_only_for_configured_origins(fake_engine: Engine, origins: list[str]) -> None:
    settings = make_settings(fake_engine.settings.index_dir, answerable_threshold=0.2, cors_origins=origins)
    with TestClient(create_app(settings, engine=fake_engine)) as test_client:
        preflight = test_client.options(
            "/search",
            headers={"Origin": "http://webui.example:3000", "Access-Control-Request-Method": "POST"},
        )
        simple = test_client.get("/healthz", headers={"Origin": "http://webui.example:3000"})
    allowed = preflight.headers.get("access-control-allow-origin")
    assert allowed == (origins[0] if origins else None)
    assert simple.headers.get("access-control-allow-origin") == (origins[0] if origins else None)


def test_cors_origins_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("RAG_CORS_ORIGINS", "http://a.example, http://b.example")
    from service.config import Settings

    assert Settings(_env_file=None, index_dir=tmp_path).cors_origins == [  # type: ignore[call-arg]
        "http://a.example",
        "http://b.example",
    ]
