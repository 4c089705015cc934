"""The index's domain objects as API responses: one function per response schema.

Routes, the CLI (`rag ask --json`) and MCP call these; the schemas themselves (`service.schemas`)
stay pure pydantic so that the HTTP client can use them without server code.
"""

from __future__ import annotations

from corpus import Document
from index.search.answers import AnswerSpan
from index.search.document_ranking import DocumentHit, DocumentSearchOutcome
from index.search.retrieval import Hit, SearchOutcome
from index.text.chunking import Chunk
from service.engine import Written
from service.schemas import (
    AnswerOut,
    AppliedFilters,
    DocumentRef,
    DocumentResponse,
    DocumentResultItem,
    DocumentSearchResponse,
    DocumentSummary,
    DocumentWriteResponse,
    ExplainOut,
    PassageOut,
    SearchResponse,
    SearchResultItem,
    WriteStatus,
)


def document_ref(document: Document) -> DocumentRef:
    return DocumentRef(
        id=document.id,
        title=document.title,
        source=document.source,
        author=document.author,
        url=document.url,
        published=document.published,
    )


def citation_fields(document: Document) -> dict[str, str]:
    """The document's citation fields, its id as `document_id`: what LLM formats carry per passage."""
    fields = document_ref(document).model_dump()
    return {"document_id": fields.pop("id"), **fields}


def answer_out(answer: AnswerSpan) -> AnswerOut:
    return AnswerOut(text=answer.text, start=answer.start, end=answer.end, field=answer.field)


def passage_out(chunk: Chunk) -> PassageOut:
    return PassageOut(chunk_id=chunk.id, text=chunk.text, start=chunk.start, end=chunk.end)


def applied_filters(outcome: SearchOutcome | DocumentSearchOutcome) -> AppliedFilters:
    """The filters a search kept to, in their JSON form (every surface reports them the same way)."""
    return AppliedFilters(
        filter=None if outcome.filter is None else outcome.filter.to_dict(),
        filter_from_question=None if outcome.dates is None else outcome.dates.to_dict(),
    )


def search_response(outcome: SearchOutcome) -> SearchResponse:
    return SearchResponse(
        query=outcome.query,
        mode=outcome.mode,
        index_version=outcome.index_version,
        answerable=outcome.answerable,
        confidence=outcome.confidence,
        results=[search_result(hit) for hit in outcome.hits],
        **applied_filters(outcome).model_dump(),
    )


def search_result(hit: Hit) -> SearchResultItem:
    return SearchResultItem(
        **passage_out(hit.chunk).model_dump(),
        rank=hit.rank,
        score=hit.score,
        document=document_ref(hit.document),
        answer=answer_out(hit.answer),
        explain=ExplainOut(**vars(hit.explain)),
    )


def document_search_response(outcome: DocumentSearchOutcome) -> DocumentSearchResponse:
    return DocumentSearchResponse(
        query=outcome.query,
        index_version=outcome.index_version,
        feedback=outcome.feedback,
        results=[document_result(hit) for hit in outcome.hits],
        **applied_filters(outcome).model_dump(),
    )


def document_result(hit: DocumentHit) -> DocumentResultItem:
    return DocumentResultItem(
        rank=hit.rank,
        score=hit.score,
        document=document_ref(hit.document),
        passage=passage_out(hit.passage),
        answer=answer_out(hit.answer),
    )


def document_summary(document: Document) -> DocumentSummary:
    return DocumentSummary(**document_ref(document).model_dump(), characters=len(document.text))


def document_response(document: Document, index_version: str) -> DocumentResponse:
    return DocumentResponse(
        **document_ref(document).model_dump(),
        index_version=index_version,
        text=document.text,
        metadata=document.metadata,
    )


def write_response(status: WriteStatus, document_id: str, written: Written) -> DocumentWriteResponse:
    return DocumentWriteResponse(
        status=status,
        document_id=document_id,
        index_version=written.version,
        documents=written.documents,
        chunks=written.chunks,
    )
