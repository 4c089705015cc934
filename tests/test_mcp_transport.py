"""`/mcp` over a real HTTP transport with plain clients (not the MCP SDK): what curl sees."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.app import create_app
from service.engine import Engine
from tests.live_server import live_server


@pytest.fixture
def base_url(fake_engine: Engine) -> Iterator[str]:
    with live_server(create_app(fake_engine.settings, engine=fake_engine)) as url:
        yield url


@pytest.mark.parametrize("accept", [None, "text/event-stream", "application/json, text/event-stream"])
def test_get_mcp_is_refused_at_once_not_left_hanging(base_url: str, accept: str | None) -> None:
    headers = {"accept": accept} if accept else {}
    # The timeout only bounds the test if the server regresses to an open, silent stream.
    response = httpx.get(f"{base_url}/mcp", headers=headers, timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_post_mcp_still_answers(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert {tool["name"] for tool in response.json()["result"]["tools"]} == {"search", "fetch"}
