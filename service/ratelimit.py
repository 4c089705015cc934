"""Rate limits per API key: separate read and write rates, 429 with `Retry-After` over them.

In scope: `RateLimit`, a pure ASGI middleware over the `limits` library (moving window, in
memory: one process's counts). Off unless RAG_RATE_LIMIT_READS or RAG_RATE_LIMIT_WRITES is set.
A request is counted against its API key (the key's short id, service/request_context.py) when
the server has keys, and against its client address when it has none; a key never shares a
count with another. Writes are POST/PUT/PATCH/DELETE under `/documents`, `/admin` and `/jobs`
(also inside `/collections/{name}`); every other request is a read. Probes (`/healthz`,
`/readyz`) and CORS preflights are not counted.

`limits` has no token bucket: its moving window is used as one. A rate of R per second with a
burst of B becomes "at most B requests in any B/R seconds" (the window rounded up to whole
seconds, the library's unit, and holding R x window requests, never fewer than B): a key that
has been quiet may send B at once, as from a full bucket, and one that keeps sending gets R per
second on average, each used slot coming back one window after it was taken (a bucket refills
continuously instead; the long-run rate and the largest burst are the same). Out of scope:
limits shared by several processes or replicas (a `limits` storage such as Redis would do it),
per-route costs, quotas.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth import key_from_headers
from service.config import Settings
from service.errors import error_response
from service.request_context import key_id

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WRITE_PATH = re.compile(r"^(/collections/[^/]+)?/(documents|admin|jobs)(/|$)")
UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz"})


@dataclass(frozen=True)
class Rate:
    """A sustained rate and a burst, as the moving window `limits` checks."""

    per_second: float
    burst: int

    def item(self, namespace: str) -> RateLimitItem:
        window = max(1, math.ceil(self.burst / self.per_second))
        amount = max(self.burst, math.floor(self.per_second * window))
        return RateLimitItemPerSecond(amount, window, namespace=namespace)


def rate(per_second: float | None, burst: int | None) -> Rate | None:
    """The rate a setting pair describes; the burst defaults to one second's worth."""
    if per_second is None:
        return None
    return Rate(per_second, burst if burst is not None else max(1, math.ceil(per_second)))


def is_write(method: str, path: str) -> bool:
    return method in WRITE_METHODS and _WRITE_PATH.match(path) is not None


class RateLimit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        reads = rate(settings.rate_limit_reads, settings.rate_limit_burst)
        writes = rate(settings.rate_limit_writes, settings.rate_limit_burst)
        self.items = {
            "read": reads.item("rag-reads") if reads else None,
            "write": writes.item("rag-writes") if writes else None,
        }
        self.keyed = bool(settings.api_keys or settings.admin_keys)
        # The storage starts a timer thread: only a server with limits has one.
        self.limiter = MovingWindowRateLimiter(MemoryStorage()) if reads or writes else None

    def identity(self, scope: Scope) -> str:
        if self.keyed:
            key = key_id(key_from_headers(Headers(scope=scope)))
            if key is not None:
                return f"key:{key}"
        client = scope.get("client")
        return f"client:{client[0] if client else 'unknown'}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limiter is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = str(scope.get("method", "")), str(scope.get("path", ""))
        item = self.items["write" if is_write(method, path) else "read"]
        if item is None or method == "OPTIONS" or path in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        who = self.identity(scope)
        if self.limiter.hit(item, who):
            await self.app(scope, receive, send)
            return
        reset_at = self.limiter.get_window_stats(item, who).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        kind = "write" if item.namespace == "rag-writes" else "read"
        response = error_response(
            429,
            "rate_limited",
            f"over this key's {kind} rate limit ({item.amount} per {item.get_expiry()} s; "
            f"RAG_RATE_LIMIT_{kind.upper()}S); retry after {retry_after} s",
        )
        response.headers["Retry-After"] = str(retry_after)
        await response(scope, receive, send)
