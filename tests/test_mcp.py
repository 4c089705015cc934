"""The MCP server through the SDK's own client, over both real transports: streamable HTTP at
`/mcp` of a running app, and stdio by spawning `rag mcp`. Real model, real corpus."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from service.app import create_app
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION
from tests.live_server import live_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mcp_url(real_engine: Engine) -> Iterator[str]:
    with live_server(create_app(real_engine.settings, engine=real_engine)) as base_url:
        yield f"{base_url}/mcp"


def assert_peace_pipeline_answer(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    structured: dict[str, Any] = result.structured_content
    assert structured["answerable"] is True
    top = structured["passages"][0]
    assert top["document_id"] == "nournews-larijani-visit"
    assert "Peace Pipeline" in top["answer"]["text"]
    assert top["passage_id"] == f"{top['document_id']}#{top['start']}-{top['end']}"
    assert top["citation"].startswith('"Larijani')
    return structured


async def _search_over(server: str | StdioServerParameters) -> tuple[list[str], Any]:
    async with Client(server) as client:
        tools = await client.list_tools()
        result = await client.call_tool("search", {"question": EXAMPLE_QUESTION, "k": 3})
        return [tool.name for tool in tools.tools], result


def test_streamable_http_lists_and_calls_search(mcp_url: str) -> None:
    names, result = anyio.run(_search_over, mcp_url)
    assert set(names) == {"search", "fetch"}
    structured = assert_peace_pipeline_answer(result)
    assert len(structured["passages"]) == 3


def test_tools_are_described_for_a_model(mcp_url: str) -> None:
    async def listing() -> Any:
        async with Client(mcp_url) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in anyio.run(listing)}
    search = tools["search"]
    assert "answerable" in (search.description or "")
    assert set(search.input_schema["properties"]) == {
        "question",
        "k",
        "mode",
        "context",
        "filter",
        "dates_from_question",
        "as_of",
        "collection",
    }
    assert search.input_schema["required"] == ["question"]
    assert all(p.get("description") for p in search.input_schema["properties"].values())
    assert search.output_schema is not None and "passages" in search.output_schema["properties"]
    assert search.annotations is not None and search.annotations.read_only_hint is True


def test_fetch_passage_and_document_with_citations(mcp_url: str, real_engine: Engine) -> None:
    document = real_engine.document("nournews-larijani-visit")
    passage_id = f"{document.id}#100-250"

    async def fetches() -> tuple[Any, Any, Any, Any, Any]:
        async with Client(mcp_url) as client:
            return (
                await client.call_tool("fetch", {"id": passage_id}),
                await client.call_tool("fetch", {"id": document.id}),
                await client.call_tool("fetch", {"id": "no-such-document"}),
                await client.call_tool("fetch", {"id": f"{document.id}#5-999999"}),
                await client.call_tool("fetch", {"id": f"{document.id}#5-5"}),
            )

    passage, whole, missing, out_of_range, empty = anyio.run(fetches)
    assert passage.structured_content["text"] == document.text[100:250]
    assert passage.structured_content["citation"].endswith("(nournews-larijani-visit, characters 100-250)")
    assert whole.structured_content["text"] == document.text
    assert missing.is_error and "no-such-document" in missing.content[0].text
    assert out_of_range.is_error and "outside document" in out_of_range.content[0].text
    assert empty.is_error and "selects no text" in empty.content[0].text


def test_bad_search_arguments_are_tool_errors(mcp_url: str) -> None:
    async def calls() -> list[Any]:
        async with Client(mcp_url) as client:
            return [
                await client.call_tool("search", {"question": "   "}),
                await client.call_tool("search", {"question": "ports", "k": 0}),
                await client.call_tool("search", {"question": "ports", "context": 9}),
            ]

    empty, zero_k, wide = anyio.run(calls)
    assert empty.is_error and "must not be empty" in empty.content[0].text
    assert zero_k.is_error and "k must be between 1 and 50" in zero_k.content[0].text
    assert wide.is_error and "context must be between 0 and 3" in wide.content[0].text


def test_search_context_widens_passage(mcp_url: str, real_engine: Engine) -> None:
    async def both() -> tuple[Any, Any]:
        async with Client(mcp_url) as client:
            plain = await client.call_tool("search", {"question": EXAMPLE_QUESTION, "k": 1})
            wide = await client.call_tool("search", {"question": EXAMPLE_QUESTION, "k": 1, "context": 1})
            return plain, wide

    plain, wide = (r.structured_content["passages"][0] for r in anyio.run(both))
    assert wide["start"] <= plain["start"] and wide["end"] >= plain["end"]
    assert (wide["start"], wide["end"]) != (plain["start"], plain["end"])
    assert wide["text"] == real_engine.document(wide["document_id"]).text[wide["start"] : wide["end"]]


def test_stdio_rag_mcp_lists_and_calls_search(real_engine: Engine, tmp_path: Path) -> None:
    rag = Path(sys.executable).parent / "rag"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "RAG_INDEX_DIR": str(real_engine.settings.index_dir),
    }
    # Started outside the repository, as a desktop client would.
    server = StdioServerParameters(command=str(rag), args=["mcp"], env=env, cwd=str(tmp_path))
    names, result = anyio.run(_search_over, server)
    assert set(names) == {"search", "fetch"}
    assert_peace_pipeline_answer(result)
