"""`/healthz`: is the index loaded, and which generation is live."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import EngineDep
from service.schemas import ErrorResponse, HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    operation_id="health",
    summary="Health and index version",
    description="`ok` with the live index version and its document and chunk counts.",
    response_model=HealthResponse,
    responses={503: {"model": ErrorResponse, "description": "No index is loaded."}},
)
def health(engine: EngineDep) -> HealthResponse:
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
def health_head(engine: EngineDep) -> None:
    """`HEAD /healthz` for load balancers and uptime checks: the GET's status without the body."""
    engine.health()
