"""`/documents`: list the corpus and read one document's canonical text (what offsets point into)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import EngineDep
from service.schemas import DocumentListResponse, DocumentResponse, DocumentSummary, ErrorResponse

router = APIRouter(tags=["documents"])


@router.get(
    "/documents",
    operation_id="list_documents",
    summary="List documents",
    description="All documents in the index with their citation metadata and length, sorted by id.",
    response_model=DocumentListResponse,
)
def list_documents(engine: EngineDep) -> DocumentListResponse:
    retriever = engine.retriever
    documents = sorted(retriever.data.documents.values(), key=lambda d: d.id)
    return DocumentListResponse(
        index_version=retriever.version, documents=[DocumentSummary.of(d) for d in documents]
    )


@router.get(
    "/documents/{document_id}",
    operation_id="get_document",
    summary="Get one document",
    description="One document with its full canonical text. Every `start`/`end` offset returned by "
    "`/search` indexes into this `text`, so `text[start:end]` is the cited passage.",
    response_model=DocumentResponse,
    responses={404: {"model": ErrorResponse, "description": "No document with that id."}},
)
def get_document(
    engine: EngineDep,
    document_id: Annotated[str, Path(description="The document id, as returned by search.")],
) -> DocumentResponse:
    retriever = engine.retriever
    return DocumentResponse.of_document(engine.document(document_id), retriever.version)
