"""Who may read and who may change which collection: optional API keys, checked in constant time.

In scope: the `ReadAccess`, `AdminAccess` and `CollectionAccess` dependencies, key scopes, and
the rule for servers without keys.

- No keys configured (neither RAG_API_KEYS nor RAG_ADMIN_KEYS): anyone may read; writes are
  accepted only when the server listens on loopback (127.0.0.0/8, ::1, localhost), so a server
  exposed by mistake cannot be rewritten by anyone who reaches it.
- Keys configured: every route but `/healthz` needs `Authorization: Bearer <key>` or
  `X-API-Key: <key>`. A read key or an admin key may read; only an admin key may write. With
  read keys but no admin keys, writes again need a loopback server (and a read key).
- A key entry `key@news+sport` may use only those collections (`default` is the routes' without
  a prefix): on any other, 403 `forbidden_collection` (service/collection_names.py has the syntax).

Both header schemes are declared in OpenAPI through FastAPI's security classes. A key is compared
with every configured key by `secrets.compare_digest`, without stopping at the first match, and
is never logged or echoed. Out of scope: users, rate limits.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.collection_names import (
    COLLECTION_NAME_PATTERN,
    COLLECTION_NAME_RULE,
    collection_of,
    scoped_key,
)
from service.config import Settings
from service.errors import ApiError, error_response

bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="BearerKey", description="`Authorization: Bearer <key>`."
)
header_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKeyHeader", description="`X-API-Key: <key>`."
)


def is_loopback_host(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Grant:
    """What a presented key may use: `collections`, or every collection when None."""

    collections: frozenset[str] | None = None

    def allows(self, collection: str | None) -> bool:
        """`collection` None asks only whether the key is valid (the MCP endpoint's guard)."""
        return self.collections is None or collection is None or collection in self.collections


EVERY_COLLECTION = Grant()


def key_grant(candidate: str, entries: list[str]) -> Grant | None:
    """The grant of `candidate` among the key `entries` (`key` or `key@a+b`), None if it is none
    of them. Every entry is compared, in constant time each; a key listed more than once may use
    what all its entries allow."""
    given = candidate.encode("utf-8")
    found, unscoped, collections = False, False, set[str]()
    for entry in entries:
        key, scope = scoped_key(entry)
        if secrets.compare_digest(given, key.encode("utf-8")):
            found = True
            unscoped |= scope is None
            collections |= scope or set()
    if not found:
        return None
    return EVERY_COLLECTION if unscoped else Grant(frozenset(collections))


def key_matches(candidate: str, entries: list[str]) -> bool:
    """True if `candidate` is the key of one of `entries`, whatever its scope."""
    return key_grant(candidate, entries) is not None


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key sent as `Authorization: Bearer <key>` or, failing that, `X-API-Key: <key>`."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


# The dependencies are async: they do no I/O, and a plain `def` would cost a worker thread hop.
async def _presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    header_key: Annotated[str | None, Depends(header_scheme)],
) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header_key or None


PresentedKey = Annotated[str | None, Depends(_presented_key)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def require_read(request: Request, key: PresentedKey) -> None:
    check_read(_settings(request), key, collection_of(request.path_params))


async def require_collection_read(
    request: Request,
    key: PresentedKey,
    collection: Annotated[
        str,
        Path(pattern=COLLECTION_NAME_PATTERN, description=COLLECTION_NAME_RULE, examples=["default", "news"]),
    ],
) -> None:
    """`require_read` for the routes under `/collections/{collection}`, run before any other of
    their dependencies: a key that may not use the collection learns nothing of it (not even
    whether it exists), and the path parameter is declared for OpenAPI here, once."""
    check_read(_settings(request), key, collection)


async def readable_collections(request: Request, key: PresentedKey) -> Grant:
    """The collections the presented key may read (`GET /collections` lists only those)."""
    return check_read(_settings(request), key, None)


def check_read(settings: Settings, key: str | None, collection: str | None) -> Grant:
    """The key's grant; 401 without a valid key (when keys are configured), 403 if it may not use
    `collection` (None: any collection will do)."""
    entries = [*settings.api_keys, *settings.admin_keys]
    if not entries:
        return EVERY_COLLECTION
    if key is None:
        raise ApiError(
            401, "missing_api_key", "this server needs an API key: send `Authorization: Bearer <key>`"
        )
    grant = key_grant(key, entries)
    if grant is None:
        raise ApiError(401, "invalid_api_key", "the API key is not valid for this server")
    return _within_scope(grant, collection)


def _within_scope(grant: Grant, collection: str | None) -> Grant:
    if not grant.allows(collection):
        raise ApiError(
            403,
            "forbidden_collection",
            f"this key may not use collection {collection!r}; it may use: "
            f"{', '.join(sorted(grant.collections or ()))}",
        )
    return grant


async def require_admin(request: Request, key: PresentedKey) -> None:
    settings, collection = _settings(request), collection_of(request.path_params)
    if settings.admin_keys:
        if key is None:
            raise ApiError(
                401, "missing_api_key", "changing documents needs an admin key (one of RAG_ADMIN_KEYS)"
            )
        grant = key_grant(key, settings.admin_keys)
        if grant is not None:
            _within_scope(grant, collection)
            return
        if key_matches(key, settings.api_keys):
            raise ApiError(403, "admin_key_required", "this key may read but not change documents")
        raise ApiError(401, "invalid_api_key", "the API key is not valid for this server")
    check_read(settings, key, collection)
    if not is_loopback_host(settings.host):
        raise ApiError(
            403,
            "writes_disabled",
            f"writes are disabled: the server listens on {settings.host!r}, not loopback, and no "
            "admin key is configured; set RAG_ADMIN_KEYS or listen on 127.0.0.1",
        )


ReadAccess = Annotated[None, Depends(require_read)]
AdminAccess = Annotated[None, Depends(require_admin)]
ReadableCollections = Annotated[Grant, Depends(readable_collections)]
READ_DEPENDENCIES = [Depends(require_read)]
COLLECTION_DEPENDENCIES = [Depends(require_collection_read)]


class ReadKeyGuard:
    """ASGI guard with the `ReadAccess` rule for routes outside FastAPI's dependency system
    (the MCP endpoint): requests under `prefixes` without a valid key get the same 401."""

    def __init__(self, app: ASGIApp, settings: Settings, prefixes: tuple[str, ...]) -> None:
        self.app, self.settings, self.prefixes = app, settings, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and path.startswith(self.prefixes) and scope.get("method") != "OPTIONS":
            try:
                # Any collection will do here: the MCP tools check the one they are asked for.
                check_read(self.settings, key_from_headers(Headers(scope=scope)), None)
            except ApiError as error:
                await error_response(error.status, error.code, error.message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
