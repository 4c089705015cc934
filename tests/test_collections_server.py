"""Collections and scoped keys against a real server process (uvicorn, fake embedder): HTTP
routes, the MCP tools' `collection` argument, the Python client, and a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corpus import load_corpus
from index.embedding import HashingEmbedder
from service.client import RagClient, RagClientError
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, make_settings
from tests.rag_server_process import ServerProcess
from tests.test_collections import GIRAFFE, ZEBRA, bearer

READER, ADMIN = "news-reader-key", "admin-key"
MCP_HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


def start(tmp_path: Path) -> ServerProcess:
    return ServerProcess(
        tmp_path / "index",
        tmp_path / "server.log",
        collections_dir=str(tmp_path / "collections"),
        api_keys=f"{READER}@news",
        admin_keys=ADMIN,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    engine.sync(load_corpus([BUNDLED_CORPUS]))
    process = start(tmp_path)
    try:
        yield process
    finally:
        process.stop()


def call_tool(url: str, key: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    response = httpx.post(f"{url}/mcp", json=message, headers={**MCP_HEADERS, **bearer(key)}, timeout=30)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_collections_and_scoped_keys_over_http(server: ServerProcess, tmp_path: Path) -> None:
    url = server.url
    for collection, document in (("news", ZEBRA), ("animals", GIRAFFE)):
        written = httpx.post(
            f"{url}/collections/{collection}/documents", json=document, headers=bearer(ADMIN)
        )
        assert written.json()["status"] == "added", written.text

    found = httpx.get(
        f"{url}/collections/news/search", params={"q": "zebras harbour"}, headers=bearer(READER)
    )
    assert {r["document"]["id"] for r in found.json()["results"]} == {"zebra-crossing"}
    for path in ("/search", "/collections/animals/search", "/collections/nowhere/search"):
        refused = httpx.get(f"{url}{path}", params={"q": "zebras"}, headers=bearer(READER))
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden_collection")
    missing = httpx.get(f"{url}/collections/nowhere/search", params={"q": "zebras"}, headers=bearer(ADMIN))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "collection_not_found")
    default_ids = {
        r["document"]["id"]
        for r in httpx.get(
            f"{url}/search", params={"q": "zebras harbour", "k": 10}, headers=bearer(ADMIN)
        ).json()["results"]
    }
    assert default_ids and not default_ids & {"zebra-crossing", "giraffe-parade"}

    # The collections live on disk: a restarted server serves them as before.
    server.stop()
    restarted = start(tmp_path)
    try:
        listed = httpx.get(f"{restarted.url}/collections", headers=bearer(ADMIN)).json()["collections"]
        assert {c["name"]: c["documents"] for c in listed} == {"default": 3, "animals": 1, "news": 1}
        after = httpx.get(f"{restarted.url}/collections/news/documents", headers=bearer(READER))
        assert [d["id"] for d in after.json()["documents"]] == ["zebra-crossing"]
    finally:
        restarted.stop()


def test_mcp_tools_take_a_collection(server: ServerProcess) -> None:
    httpx.post(f"{server.url}/collections/news/documents", json=ZEBRA, headers=bearer(ADMIN))
    news = call_tool(server.url, READER, "search", {"question": "zebras harbour", "collection": "news"})
    assert not news.get("isError"), news
    assert {p["document_id"] for p in news["structuredContent"]["passages"]} == {"zebra-crossing"}
    fetched = call_tool(server.url, READER, "fetch", {"id": "zebra-crossing", "collection": "news"})
    assert fetched["structuredContent"]["text"] == ZEBRA["text"]

    default = call_tool(server.url, ADMIN, "search", {"question": "zebras harbour", "k": 10})
    assert "zebra-crossing" not in {p["document_id"] for p in default["structuredContent"]["passages"]}
    not_in_default = call_tool(server.url, ADMIN, "fetch", {"id": "zebra-crossing"})
    assert not_in_default["isError"]

    for key, arguments, says in (
        (READER, {"question": "zebras"}, "may not use collection 'default'"),
        (ADMIN, {"question": "zebras", "collection": "nowhere"}, "no collection named 'nowhere'"),
        (ADMIN, {"question": "zebras", "collection": "No Where"}, "not a valid collection name"),
    ):
        refused = call_tool(server.url, key, "search", arguments)
        assert refused["isError"], refused
        assert says in refused["content"][0]["text"]


def test_python_client_uses_its_collection(server: ServerProcess) -> None:
    httpx.post(f"{server.url}/collections/news/documents", json=ZEBRA, headers=bearer(ADMIN))
    with RagClient(server.url, api_key=READER, collection="news") as news:
        assert [r.document.id for r in news.search("zebras harbour").results] == ["zebra-crossing"]
        assert [d.id for d in news.documents().documents] == ["zebra-crossing"]
        assert news.health().documents == 1
    with RagClient(server.url, api_key=READER) as default, pytest.raises(RagClientError) as refused:
        default.search("zebras")
    assert (refused.value.status, refused.value.code) == (403, "forbidden_collection")
