"""One JSON error shape for every failure, and the mapping from named errors to HTTP statuses.

Every error body is ``{"error": {"code", "message", "details", "request_id"}}`` (the request's
`X-Request-ID`, service/request_context.py). Validation problems become 422 (400 for a body that
is not JSON), unknown ids and collections 404, a missing index 503, a write on a full disk 507,
what the sharded (cluster) service does not serve 501 `not_supported_in_cluster_mode`, a shard no
replica answers 503 `shard_unavailable` (naming the shards in the message and `details`), its
encoder or jobs deployment not answering 503 `encoder_unavailable` / `jobs_unavailable`; anything
unforeseen is logged and answered with a plain 500 message, never a stack trace.

Starlette gives a handler registered for `Exception` to its ServerErrorMiddleware, which raises
the error again once it has answered, and uvicorn then drops the connection: the client's next
request on it fails. So `OSError`, what an index write raises when the disk fails it, has a
handler of its own, and any other error no handler takes is answered by the `UnexpectedErrors`
middleware; both keep the connection.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corpus import CorpusError
from index.errors import IndexError_, IndexNotFoundError, StorageFullError
from service.collection_names import InvalidCollectionNameError
from service.collections import CollectionNotFoundError
from service.engine import DocumentNotFoundError
from service.observability import metrics
from service.queries import InvalidQueryError
from service.request_context import current_request_id
from service.sharded.engine import NotSupportedInClusterModeError
from service.sharded.failures import EncoderUnavailableError, JobsUnavailableError, ShardUnavailableError
from service.storage import full_disk_reason

logger = logging.getLogger("rag.service")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    metrics.error_answered(code, status)
    error = {"code": code, "message": message, "details": details or [], "request_id": current_request_id()}
    body = {"error": error}
    return JSONResponse(status_code=status, content=body)


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return {
        "field": location or "body",
        "message": error.get("msg", "invalid"),
        "type": error.get("type", ""),
    }


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for that type
        raise exc
    errors = [dict(e) for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    details = [_describe(e) for e in errors]
    return error_response(422, "invalid_request", validation_summary(errors), details)


def validation_summary(errors: list[dict[str, Any]]) -> str:
    """One line for pydantic's errors (`field: message; ...`): a 422's message, a job line's reason."""
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in map(_describe, errors))
    return summary or "invalid request"


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.status_code != 404 or exc.detail != "Not Found" else "no such route"
    return error_response(exc.status_code, code, message)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):  # pragma: no cover
        raise exc
    return error_response(exc.status, exc.code, exc.message)


async def _invalid_query(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, InvalidQueryError):  # pragma: no cover
        raise exc
    return error_response(422, exc.code, exc.message)


async def _document_not_found(_: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "document_not_found", str(exc))


async def _collection_not_found(_: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "collection_not_found", str(exc))


async def _invalid_collection_name(_: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "invalid_collection_name", str(exc))


async def _not_supported_in_cluster_mode(_: Request, exc: Exception) -> JSONResponse:
    return error_response(501, "not_supported_in_cluster_mode", str(exc))


async def _shard_unavailable(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ShardUnavailableError):  # pragma: no cover
        raise exc
    logger.warning("sharded search refused: %s", exc)
    details = [
        {"field": "shard", "message": f"shard-{shard} did not answer", "type": "shard_unavailable"}
        for shard in exc.shards
    ]
    return error_response(503, "shard_unavailable", str(exc), details)


async def _encoder_unavailable(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("sharded search refused: %s", exc)
    return error_response(503, "encoder_unavailable", str(exc))


async def _jobs_unavailable(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("job request refused: %s", exc)
    return error_response(503, "jobs_unavailable", str(exc))


async def _corpus_error(_: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "invalid_document", str(exc))


async def _index_error(_: Request, exc: Exception) -> JSONResponse:
    code = "index_not_found" if isinstance(exc, IndexNotFoundError) else "index_unavailable"
    return error_response(503, code, str(exc))


async def _storage_full(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("write refused: %s", exc)
    return error_response(507, "insufficient_storage", str(exc))


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    reason = full_disk_reason(exc)
    if reason is None:
        return _unexpected_response(exc)
    return await _storage_full(request, StorageFullError("the index", reason, "retry"))


def _unexpected_response(exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error; the server log has the details")


class UnexpectedErrors:
    """Answers an error no handler took with the JSON 500 itself. Starlette's own last resort
    (ServerErrorMiddleware) answers the same but then re-raises, and uvicorn drops the keep-alive
    connection, so the client's next request on it fails. Once a response has started, the error
    can only be re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:
                raise
            await _unexpected_response(exc)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InvalidQueryError, _invalid_query)
    app.add_exception_handler(DocumentNotFoundError, _document_not_found)
    app.add_exception_handler(CollectionNotFoundError, _collection_not_found)
    app.add_exception_handler(InvalidCollectionNameError, _invalid_collection_name)
    app.add_exception_handler(CorpusError, _corpus_error)
    app.add_exception_handler(NotSupportedInClusterModeError, _not_supported_in_cluster_mode)
    app.add_exception_handler(ShardUnavailableError, _shard_unavailable)
    app.add_exception_handler(EncoderUnavailableError, _encoder_unavailable)
    app.add_exception_handler(JobsUnavailableError, _jobs_unavailable)
    app.add_exception_handler(IndexError_, _index_error)
    app.add_exception_handler(StorageFullError, _storage_full)
    app.add_exception_handler(OSError, _os_error)


FULL_DISK_RESPONSES: dict[int | str, dict[str, Any]] = {
    507: {
        "description": "The disk holding the index is full: nothing was changed; free space and retry.",
    },
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": None, "description": "Malformed request body."},
    422: {"description": "The request is invalid; the message says which field and why."},
}
