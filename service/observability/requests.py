"""The per-request part of metrics and traces: an ASGI middleware, and the stage hook it installs.

`RequestMetrics` (pure ASGI, so it adds no task or thread per request) counts each request by
route template (`/documents/{document_id}`, never the raw path; `<unmatched>` when no route
matched), method (`other` beyond the standard ones) and status, and times it into a histogram; while the request runs, search
stages (index/search/stages.py) go to a `StageRecorder`. With tracing on, the response carries
the request's trace id as `X-Trace-Id` (32 hex digits) and its W3C `traceparent`.

`StageRecorder` times each stage into `rag_search_stage_duration_seconds` (with metrics on) and,
with a tracer, opens a span named after the stage as a child of the current one. Out of scope:
request logs and request ids (their own middleware), what the trace exporter does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from time import perf_counter
from types import TracebackType
from typing import Any

from opentelemetry import trace
from prometheus_client.metrics import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from index.search.stages import STAGES, observing_stages
from service.observability.metrics import IN_PROGRESS, REQUEST_SECONDS, REQUESTS, STAGE_SECONDS

UNMATCHED = "<unmatched>"
# Methods are labels as they are; any other a client makes up is `other`, so labels stay bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Timed:
    """A stage timed into its histogram: two clock reads and one observation."""

    __slots__ = ("histogram", "started")

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = perf_counter()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.histogram.observe(perf_counter() - self.started)


class StageRecorder:
    """The stage hook: metrics (`record`), spans (`tracer`), or both."""

    def __init__(self, record: bool, tracer: trace.Tracer | None) -> None:
        self.tracer = tracer
        self.histograms = {name: STAGE_SECONDS.labels(name) for name in STAGES} if record else {}

    def __call__(self, name: str) -> AbstractContextManager[object]:
        histogram = self.histograms.get(name)
        if self.tracer is None and histogram is not None:
            return _Timed(histogram)
        return self._spanned(name, histogram)

    @contextmanager
    def _spanned(self, name: str, histogram: Histogram | None) -> Iterator[None]:
        started = perf_counter()
        try:
            if self.tracer is None:
                yield
            else:
                with self.tracer.start_as_current_span(name, attributes={"rag.stage": name}):
                    yield
        finally:
            if histogram is not None:
                histogram.observe(perf_counter() - started)


class RequestMetrics:
    """Counts and times requests (`record`), installs `stages` for each, and, with `tracing`,
    puts the trace id in the response headers."""

    def __init__(self, app: ASGIApp, record: bool, stages: StageRecorder, tracing: bool) -> None:
        self.app, self.record, self.stages, self.tracing = app, record, stages, tracing
        self._templates: dict[int, str] | None = None  # routes without FastAPI's scope["route"]
        # Each (route, method, status)'s histogram and counter, looked up once.
        self._children: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_headers = _trace_headers() if self.tracing else []
        if not self.record:
            with observing_stages(self.stages):
                await self.app(scope, receive, _with_headers(send, trace_headers))
            return
        started, status, counted = perf_counter(), 500, False

        def count() -> None:
            nonlocal counted
            counted = True
            IN_PROGRESS.dec()
            method = scope["method"] if scope["method"] in METHODS else "other"
            key = (self._template(scope), method, status)
            children = self._children.get(key)
            if children is None:  # labels are bounded, so is this cache
                children = self._children[key] = (
                    REQUEST_SECONDS.labels(key[0], method),
                    REQUESTS.labels(key[0], method, str(status)),
                )
            children[0].observe(perf_counter() - started)
            children[1].inc()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body") and not counted:
                count()  # before the last byte goes out: a client that has the answer sees it counted
            await send(message)

        IN_PROGRESS.inc()
        try:
            with observing_stages(self.stages):
                await self.app(scope, receive, _with_headers(sending, trace_headers))
        finally:
            if not counted:  # no complete response (the client left, or an error past the handlers)
                count()

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")  # FastAPI's routes put themselves here
        if route is not None:
            return str(route.path)
        endpoint = scope.get("endpoint")  # Starlette's own (the MCP route, the static files' mount)
        if endpoint is None:
            return UNMATCHED
        if self._templates is None:
            router: Any = scope["app"].router
            self._templates = {
                id(each.endpoint if hasattr(each, "endpoint") else each.app): str(each.path)
                for each in router.routes
                if hasattr(each, "path")
            }
        return self._templates.get(id(endpoint), UNMATCHED)


def _trace_headers() -> list[tuple[bytes, bytes]]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return []
    trace_id, span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    flags = f"{int(context.trace_flags):02x}"
    return [
        (b"x-trace-id", trace_id.encode()),
        (b"traceparent", f"00-{trace_id}-{span_id}-{flags}".encode()),
    ]


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """`send`, adding `headers` to the response's start."""
    if not headers:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *headers]}
        await send(message)

    return sending
