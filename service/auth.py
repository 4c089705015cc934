"""Who may read and who may change the corpus: optional API keys, checked in constant time.

In scope: the `ReadAccess` and `AdminAccess` dependencies and the rule for servers without keys.

- No keys configured (neither RAG_API_KEYS nor RAG_ADMIN_KEYS): anyone may read; writes are
  accepted only when the server listens on loopback (127.0.0.0/8, ::1, localhost), so a server
  exposed by mistake cannot be rewritten by anyone who reaches it.
- Keys configured: every route but `/healthz` needs `Authorization: Bearer <key>` or
  `X-API-Key: <key>`. A read key or an admin key may read; only an admin key may write. With
  read keys but no admin keys, writes again need a loopback server (and a read key).

Both header schemes are declared in OpenAPI through FastAPI's security classes. A key is compared
with every configured key by `secrets.compare_digest`, without stopping at the first match, and
is never logged or echoed. Out of scope: users, scopes beyond read/admin, rate limits.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

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


def key_matches(candidate: str, keys: list[str]) -> bool:
    """True if `candidate` equals one of `keys`; every key is compared, in constant time each."""
    given = candidate.encode("utf-8")
    found = False
    for key in keys:
        found |= secrets.compare_digest(given, key.encode("utf-8"))
    return found


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
    check_read(_settings(request), key)


def check_read(settings: Settings, key: str | None) -> None:
    allowed = [*settings.api_keys, *settings.admin_keys]
    if not allowed:
        return
    if key is None:
        raise ApiError(
            401, "missing_api_key", "this server needs an API key: send `Authorization: Bearer <key>`"
        )
    if not key_matches(key, allowed):
        raise ApiError(401, "invalid_api_key", "the API key is not valid for this server")


async def require_admin(request: Request, key: PresentedKey) -> None:
    settings = _settings(request)
    if settings.admin_keys:
        if key is None:
            raise ApiError(
                401, "missing_api_key", "changing documents needs an admin key (one of RAG_ADMIN_KEYS)"
            )
        if key_matches(key, settings.admin_keys):
            return
        if key_matches(key, settings.api_keys):
            raise ApiError(403, "admin_key_required", "this key may read but not change documents")
        raise ApiError(401, "invalid_api_key", "the API key is not valid for this server")
    check_read(settings, key)
    if not is_loopback_host(settings.host):
        raise ApiError(
            403,
            "writes_disabled",
            f"writes are disabled: the server listens on {settings.host!r}, not loopback, and no "
            "admin key is configured; set RAG_ADMIN_KEYS or listen on 127.0.0.1",
        )


ReadAccess = Annotated[None, Depends(require_read)]
AdminAccess = Annotated[None, Depends(require_admin)]
READ_DEPENDENCIES = [Depends(require_read)]


class ReadKeyGuard:
    """ASGI guard with the `ReadAccess` rule for routes outside FastAPI's dependency system
    (the MCP endpoint): requests under `prefixes` without a valid key get the same 401."""

    def __init__(self, app: ASGIApp, settings: Settings, prefixes: tuple[str, ...]) -> None:
        self.app, self.settings, self.prefixes = app, settings, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and path.startswith(self.prefixes) and scope.get("method") != "OPTIONS":
            headers = Headers(scope=scope)
            authorization = headers.get("authorization", "")
            scheme, _, credentials = authorization.partition(" ")
            key = credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None
            try:
                check_read(self.settings, key or headers.get("x-api-key") or None)
            except ApiError as error:
                await error_response(error.status, error.code, error.message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
