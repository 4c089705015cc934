"""Input limits: request body size (also for chunked bodies), upload types and document size.

In scope: `BodySizeLimit`, an ASGI middleware that refuses a body over RAG_MAX_BODY_BYTES with
413 before any route sees it, whether the client declared a Content-Length or streamed the body
chunked (it is counted as it arrives and never held beyond the limit); and the checks the
document routes run on uploads (`checked_upload`) and on the documents they are about to store
(`checked_document`: text, citation fields and metadata). Every refusal is a 4xx naming the limit and the variable that sets it.
Query length and `k` are checked in service/deps.py. Out of scope: rate limiting.

Why not Starlette's own body-limit middleware: its 413 carries a generic message, while every
refusal here must use the service's error body and name the setting to change.
"""

from __future__ import annotations

import json
from pathlib import PurePath

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corpus import Document
from corpus.loading import TEXT_FIELDS
from service.config import Settings
from service.errors import ApiError, error_response

# Control bytes that do not occur in text files: all below 32 but tab, newline, form feed, CR.
_BINARY_BYTES = frozenset(range(32)) - {9, 10, 12, 13}
_SNIFF_BYTES = 8192


class BodySizeLimit:
    """`larger`: (path suffix, limit, its variable) for the routes whose bodies may be larger."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: tuple[str, int, str] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, variable = self.max_bytes, "RAG_MAX_BODY_BYTES"
        if self.larger is not None and str(scope.get("path", "")).endswith(self.larger[0]):
            _, max_bytes, variable = self.larger
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await self._refuse(
                    scope, receive, send, 400, "invalid_content_length", "invalid Content-Length"
                )
                return
            if int(declared) > max_bytes:
                await self._refuse_too_large(scope, receive, send, int(declared), max_bytes, variable)
                return
        # Read the whole body first (at most max_bytes of it), so a chunked body over the limit is
        # refused before the route starts; the route then reads the buffered copy.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > max_bytes:
                await self._refuse_too_large(scope, receive, send, received, max_bytes, variable)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse_too_large(
        self, scope: Scope, receive: Receive, send: Send, size: int, max_bytes: int, variable: str
    ) -> None:
        await self._refuse(
            scope,
            receive,
            send,
            413,
            "body_too_large",
            f"the request body is over {max_bytes} bytes (at least {size} sent); the limit is {variable}",
        )

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        response = error_response(status, code, message)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def checked_upload(filename: str, data: bytes, settings: Settings) -> None:
    """Refuse uploads of a type the server does not accept, binary files and empty files."""
    suffix = PurePath(filename).suffix.lower()
    allowed = [t.lower() for t in settings.allowed_upload_types]
    if suffix not in allowed:
        raise ApiError(
            415,
            "unsupported_upload_type",
            f"uploads of type {suffix or '(no suffix)'!r} are not accepted; allowed: {', '.join(allowed)} "
            "(RAG_ALLOWED_UPLOAD_TYPES)",
        )
    if any(byte in _BINARY_BYTES for byte in data[:_SNIFF_BYTES]):
        raise ApiError(415, "binary_upload", f"{filename} is binary data, not a text document")
    if not data.strip():
        raise ApiError(422, "empty_document", f"{filename} is empty")


def checked_document(document: Document, settings: Settings) -> Document:
    """Refuse a document whose text, any citation field or its metadata is over its limit: each
    is copied into every hit on the document, so none may grow without bound."""
    if len(document.text) > settings.max_document_chars:
        raise ApiError(
            413,
            "document_too_large",
            f"document {document.id!r} has {len(document.text)} characters; the limit is "
            f"{settings.max_document_chars} (RAG_MAX_DOCUMENT_CHARS)",
        )
    for name in TEXT_FIELDS:
        length = len(getattr(document, name))
        if length > settings.max_field_chars:
            raise ApiError(
                413,
                "field_too_large",
                f"the {name} of document {document.id!r} has {length} characters; the limit is "
                f"{settings.max_field_chars} (RAG_MAX_FIELD_CHARS)",
            )
    size = len(json.dumps(document.metadata, ensure_ascii=False).encode("utf-8"))
    if size > settings.max_metadata_bytes:
        raise ApiError(
            413,
            "metadata_too_large",
            f"the metadata of document {document.id!r} is {size} bytes of JSON; the limit is "
            f"{settings.max_metadata_bytes} (RAG_MAX_METADATA_BYTES)",
        )
    return document
