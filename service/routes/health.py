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
    retriever = engine.retriever
    return HealthResponse(
        status="ok",
        index_version=retriever.version,
        documents=retriever.reader.document_count,
        chunks=retriever.reader.chunk_count,
        segments=len(retriever.reader.segments),
        segment_ceiling=engine.segment_ceiling(retriever.reader),
    )


@router.head("/healthz", include_in_schema=False)
def health_head(engine: EngineDep) -> None:
    """`HEAD /healthz` for load balancers and uptime checks: the GET's status without the body."""
    _ = engine.retriever
