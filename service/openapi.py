"""The published OpenAPI spec, made to describe exactly the responses the server sends.

FastAPI documents validation failures with its own `HTTPValidationError` body, but every error
here is `ErrorResponse` (`{"error": {"code", "message", "details"}}`, service/errors.py). This
post-processing points every documented error at `ErrorResponse` and adds the errors any route
can answer with: 400 and 413 from the body-size guard, 422 from validation, 503 without an index,
and 401/403 on routes that need a key. Schemathesis checks the running app against the result
(tests/test_fuzz_schemathesis.py). Out of scope: the routes' own descriptions.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
COMMON_ERRORS = {
    "400": "Malformed request (invalid JSON body or Content-Length).",
    "413": "Request body over RAG_MAX_BODY_BYTES.",
    "422": "Invalid request; the message names the field and the rule.",
    "429": "Over the key's rate limit (RAG_RATE_LIMIT_READS / _WRITES); `Retry-After` says when to retry.",
    "503": "No index is loaded yet (`/readyz` says why).",
}
KEYED_ERRORS = {
    "401": "An API key is configured and none, or an unknown one, was sent.",
    "403": "The key may not do this: writes need an admin key, and a scoped key only its collections.",
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def install_openapi(app: FastAPI, error_schema: dict[str, Any]) -> None:
    """Replace `app.openapi` by a generator that post-processes FastAPI's spec once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_error_responses(spec, error_schema)
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI documents overriding `app.openapi`


def with_error_responses(spec: dict[str, Any], error_schema: dict[str, Any]) -> dict[str, Any]:
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in error_schema.get("$defs", {}).items():
        components.setdefault(name, schema)
    components["ErrorResponse"] = {k: v for k, v in error_schema.items() if k != "$defs"}
    for operation in _operations(spec):
        responses = operation.setdefault("responses", {})
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                response["content"] = {"application/json": {"schema": ERROR_REF}}
        extra = {**COMMON_ERRORS, **(KEYED_ERRORS if operation.get("security") else {})}
        for status, description in extra.items():
            responses.setdefault(
                status, {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
            )
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return spec


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path_item in spec.get("paths", {}).values()
        for method, operation in path_item.items()
        if method in HTTP_METHODS
    ]
