"""Liveness versus readiness: whether the model and the default index are loaded yet.

In scope: `Readiness` (loading, ready, or failed with the reason), `load_in_background` (what the
app's lifespan runs when it builds its own engine: the server listens at once and loads in a
worker thread, so `/healthz` answers 200 and `/readyz` 503 `not_ready` while a large index or
the model loads, and a missing or damaged index leaves the process up, not ready, with the reason
in `/readyz`), and `ReadinessGate`, which answers every other request with that 503 until the
load has finished (a route would otherwise find no engine). An app handed a loaded engine
(`rag serve`, which refuses a bad index before it listens; the sharded ingress; tests) is ready
from its first request.

Out of scope: the routes themselves (service/routes/health.py), re-reading an index after a
failed load (a restart does), and whether a loaded index still reads (`/readyz` asks the engine).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from starlette.types import ASGIApp, Receive, Scope, Send

from index.errors import IndexError_, IndexNotFoundError
from service.errors import error_response

logger = logging.getLogger("rag.service")

# Served while loading: the probes themselves, and the API docs (they need no index).
UNGATED_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
RETRY_AFTER_SECONDS = 1


class LoadState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass
class Readiness:
    state: LoadState = LoadState.LOADING
    code: str = "not_ready"
    reason: str = "the model and the index are loading"

    @property
    def ready(self) -> bool:
        return self.state is LoadState.READY

    def mark_ready(self) -> None:
        self.state, self.code, self.reason = LoadState.READY, "ready", "ready"

    def mark_failed(self, code: str, reason: str) -> None:
        self.state, self.code, self.reason = LoadState.FAILED, code, reason


async def load_in_background(
    readiness: Readiness, load: Callable[[], None], finish: Callable[[], None]
) -> None:
    """`load` (blocking: the model and the index) on a worker thread, then `finish` on the event
    loop; the outcome goes to `readiness`. Never raises: a failure is a reason in `/readyz`."""
    try:
        await asyncio.to_thread(load)
        finish()
    except IndexError_ as error:
        code = "index_not_found" if isinstance(error, IndexNotFoundError) else "index_unavailable"
        logger.error("the index could not be loaded: %s", error)
        readiness.mark_failed(code, str(error))
        return
    except Exception as error:
        logger.exception("loading failed", exc_info=error)
        readiness.mark_failed("load_failed", f"loading failed: {type(error).__name__}: {error}")
        return
    readiness.mark_ready()


class ReadinessGate:
    """503 (with `Retry-After` while loading) for every request but the probes and the docs
    until `readiness` is ready; then a pass-through costing one attribute read."""

    def __init__(self, app: ASGIApp, readiness: Readiness) -> None:
        self.app, self.readiness = app, readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        readiness = self.readiness
        if readiness.ready or scope["type"] != "http" or scope.get("path") in UNGATED_PATHS:
            await self.app(scope, receive, send)
            return
        response = error_response(503, readiness.code, readiness.reason)
        if readiness.state is LoadState.LOADING:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        await response(scope, receive, send)
