"""`/healthz` (liveness: the process answers) and `/readyz` (readiness: the model and the index
are loaded and the index reads). docs/operations.md has the difference and the probes to set."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from service.deps import get_engine
from service.engine import Engine
from service.errors import ApiError
from service.readiness import Readiness
from service.schemas import ErrorResponse, HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])
probes = APIRouter(tags=["health"])  # the server's own: not copied under /collections/{name}


def _readiness(request: Request) -> Readiness:
    readiness: Readiness = request.app.state.readiness
    return readiness


async def _engine_once_loaded(request: Request) -> Engine | None:
    """The request's engine, or None while the server is still loading (or failed to)."""
    return await get_engine(request) if _readiness(request).ready else None


LoadedEngine = Annotated[Engine | None, Depends(_engine_once_loaded)]


@router.get(
    "/healthz",
    operation_id="health",
    summary="Liveness, health and index version",
    description="200 whenever the process answers. `ok` with the live index version and its "
    "document and chunk counts once loaded; `loading` (or `failed`) with null index fields before "
    "that. Once loaded, an index that cannot be read is a 503. For a load balancer's readiness "
    "check use `/readyz`.",
    response_model=HealthResponse,
    responses={503: {"model": ErrorResponse, "description": "The loaded index cannot be read."}},
)
def health(request: Request, engine: LoadedEngine) -> HealthResponse:
    if engine is None:
        state = _readiness(request).state
        return HealthResponse(status="failed" if state == "failed" else "loading")
    health = engine.health()
    return HealthResponse(
        status="ok",
        index_version=health.version,
        documents=health.documents,
        chunks=health.chunks,
        segments=health.segments,
        segment_ceiling=health.segment_ceiling,
    )


@router.head("/healthz", include_in_schema=False)
def health_head(engine: LoadedEngine) -> None:
    """`HEAD /healthz` for load balancers and uptime checks: the GET's status without the body."""
    if engine is not None:
        engine.health()


@probes.get(
    "/readyz",
    operation_id="ready",
    summary="Readiness",
    description="200 once the model and the default index are loaded and the index reads; 503 "
    "with the reason before that (`not_ready` while loading), when loading "
    "failed (`index_not_found`, `index_unavailable`, `load_failed`), or when the loaded index "
    "cannot be read (served sharded: a shard with no replica that answers).",
    response_model=ReadyResponse,
    responses={503: {"model": ErrorResponse, "description": "Not ready; the message says why."}},
)
def ready(request: Request, engine: LoadedEngine) -> ReadyResponse:
    if engine is None:
        readiness = _readiness(request)
        raise ApiError(503, readiness.code, readiness.reason)
    return ReadyResponse(status="ready", index_version=engine.health().version)
