"""A real uvicorn server of an ASGI app on 127.0.0.1 and a free port, in a thread, for tests that
need a real transport (MCP streamable HTTP, the browser). Stopped when the `with` block ends."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Yields the base URL, e.g. `http://127.0.0.1:41234`, once the server accepts requests."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    started = threading.Event()
    # Poll the server's own flag rather than sleeping a fixed time: no timing assumption.
    while thread.is_alive() and not server.started:
        started.wait(0.05)
    if not server.started:
        raise RuntimeError("the test server did not start; see the log above")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
