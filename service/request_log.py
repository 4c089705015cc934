"""One log line per request, and the `X-Request-ID` header on every response.

In scope: `RequestLog`, a pure ASGI middleware (no BaseHTTPMiddleware: it would buffer the MCP
endpoint's stream and cost a task per request) that gives each HTTP request its id
(service/request_context.py), returns it as `X-Request-ID`, and when the response is complete
writes one line to the `rag.requests` logger on stderr: start time, request id, method, route
template (the raw path only when no route matched), status, duration in ms, the key's short id
(never the key), the client address, a search's result count and index version, the trace id
when an OpenTelemetry span is active, and the query only with RAG_LOG_QUERIES. `log_format`
decides json or text, in this one place. uvicorn's own access log says less and would repeat
each line, so it is switched off while this log is on.

Out of scope: metrics and traces (the trace id is only read here), rate limits, the error
bodies' `request_id` (service/errors.py reads it from the request context).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import request_context
from service.auth import key_from_headers
from service.config import LogFormat, Settings

LOGGER_NAME = "rag.requests"
MAX_LOGGED_PATH = 256


def log_format(settings: Settings, stream: TextIO | None = None) -> LogFormat:
    """RAG_LOG_FORMAT, or when unset: text on a terminal, json otherwise (files, collectors)."""
    if settings.log_format is not None:
        return settings.log_format
    stream = stream or sys.stderr
    return LogFormat.TEXT if stream.isatty() else LogFormat.JSON


def request_logger(settings: Settings) -> logging.Logger:
    """The `rag.requests` logger, writing bare lines to stderr; configured once per app, its one
    handler replaced (never added twice) when another app is created in the same process."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # uvicorn's access line is a shorter copy of ours (`rag serve` also passes access_log=False).
    logging.getLogger("uvicorn.access").disabled = settings.request_log
    return logger


def trace_id() -> str | None:
    """The active OpenTelemetry span's trace id in 32 hex digits; None when tracing is off."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def line_fields(
    scope: Scope, record: request_context.RequestRecord, status: int, started: float, seconds: float
) -> dict[str, Any]:
    route = scope.get("route")
    template = getattr(route, "path", None)
    client = scope.get("client")
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
        "request_id": record.request_id,
        "method": scope.get("method", ""),
        "route": f"{scope.get('root_path', '')}{template}" if isinstance(template, str) else None,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "key": record.key_id,
        "client": client[0] if client else None,
    }
    if fields["route"] is None:
        fields["path"] = str(scope.get("path", ""))[:MAX_LOGGED_PATH]
    optional = {"results": record.results, "index_version": record.index_version}
    fields.update({name: value for name, value in optional.items() if value is not None})
    return fields


def render(fields: dict[str, Any], form: LogFormat) -> str:
    if form is LogFormat.JSON:
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    head = (
        f"{fields['time']} {fields['method']} {fields['route'] or fields.get('path')} {fields['status']} "
        f"{fields['duration_ms']}ms id={fields['request_id']}"
    )
    core = {"time", "method", "route", "path", "status", "duration_ms", "request_id"}
    rest = " ".join(
        f"{name}={json.dumps(value, ensure_ascii=False) if name == 'query' else value}"
        for name, value in fields.items()
        if name not in core and value is not None
    )
    return f"{head} {rest}".rstrip()


class RequestLog:
    """The request id on every HTTP response, and the log line when RAG_REQUEST_LOG is on."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.logger = request_logger(settings)
        self.form = log_format(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        record = request_context.RequestRecord(
            request_id=request_context.request_id_from(headers),
            key_id=request_context.key_id(key_from_headers(Headers(scope=scope))),
        )
        started, clock = time.time(), time.perf_counter()
        status, traced = 500, trace_id()

        async def send_with_id(message: Message) -> None:
            nonlocal status, traced
            if message["type"] == "http.response.start":
                status = int(message["status"])
                traced = traced or trace_id()
                message["headers"] = [
                    *[(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"],
                    (b"x-request-id", record.request_id.encode("latin-1")),
                ]
            await send(message)

        token = request_context.start(record)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_context.finish(token)
            if self.settings.request_log:
                fields = line_fields(scope, record, status, started, time.perf_counter() - clock)
                if traced is not None:
                    fields["trace_id"] = traced
                if self.settings.log_queries and record.query is not None:
                    fields["query"] = record.query
                self.logger.info(render(fields, self.form))
