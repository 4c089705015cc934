"""What the service knows about the request being answered: its id, and what its log line says.

In scope: the `X-Request-ID` rule (a client's id is kept when it is 1-128 safe characters,
otherwise one is generated), the key id a log line and the rate limiter use instead of the key,
and `RequestRecord`, held in a context variable for the request's lifetime so that error bodies
(service/errors.py) and the routes (`note_search`, `note_query`) reach it without passing it
around. The middleware that sets it and writes the line is service/request_log.py.

Keys have no names in this service (RAG_API_KEYS lists bare keys), so a key is identified by the
first 8 hex digits of its SHA-256: stable across restarts, the same in every log line, and not
the key (it cannot be turned back into it). Out of scope: logging itself, rate limits, metrics.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
KEY_ID_HEX_DIGITS = 8


@dataclass
class RequestRecord:
    """One request's log fields set while it runs (the middleware adds status and duration)."""

    request_id: str
    key_id: str | None = None
    results: int | None = None
    index_version: str | None = None
    query: str | None = None


_current: ContextVar[RequestRecord | None] = ContextVar("rag_request", default=None)


def current() -> RequestRecord | None:
    """The record of the request being answered; None outside a request (CLI, MCP over stdio)."""
    return _current.get()


def current_request_id() -> str | None:
    record = _current.get()
    return record.request_id if record is not None else None


def start(record: RequestRecord) -> object:
    """Make `record` the current request's; returns the token `finish` takes."""
    return _current.set(record)


def finish(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-ID` when it is 1-128 characters of letters, digits and `._:/+=@-`
    (safe in a header, a log line and JSON); otherwise a new random id (32 hex digits)."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER.encode():
            given = value.decode("latin-1").strip()
            if _SAFE_REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def key_id(key: str | None) -> str | None:
    """The stable, non-reversible short id of an API key (first 8 hex of its SHA-256)."""
    if key is None:
        return None
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:KEY_ID_HEX_DIGITS]


def note_search(results: int, index_version: str) -> None:
    """A search route's result count and the index version it read, for the log line."""
    record = _current.get()
    if record is not None:
        record.results, record.index_version = results, index_version


def note_query(query: str) -> None:
    """The request's query text; logged only with RAG_LOG_QUERIES (service/request_log.py)."""
    record = _current.get()
    if record is not None:
        record.query = query
