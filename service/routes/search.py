"""`/search`: the passages that best answer a question, with citations and answer sentences;
`/search/documents`: the documents that best match it, each cited by its closest passage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.deps import EngineDep, SettingsDep, checked_k, checked_query
from service.request_context import note_search
from service.results import document_search_response, search_response
from service.schemas import (
    DocumentSearchRequest,
    DocumentSearchResponse,
    ErrorResponse,
    SearchParams,
    SearchRequest,
    SearchResponse,
)

router = APIRouter(tags=["search"])

ERRORS = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
    422: {
        "model": ErrorResponse,
        "description": "Empty or too long query, k out of range, unknown mode, a filter on an unknown "
        "field, with a bad operator or a bad date.",
    },
    503: {
        "model": ErrorResponse,
        "description": "No index has been built yet (`index_not_found`), or, served sharded on a cluster, "
        "a shard has no replica that answers (`shard_unavailable`, naming the shards: never fewer "
        "results) or the question encoder none (`encoder_unavailable`).",
    },
}

DESCRIPTION = (
    "Search the corpus for the passages that best answer `query`. Each result carries the passage "
    "text, its document (id, title, publication, author) and character offsets into the document "
    "text, the single sentence that best answers the question (`answer`, with offsets), and an "
    "explanation of its score. `answerable` is false when no passage is a confident match: then "
    "say the corpus does not answer the question rather than relying on the results."
)


async def _search(
    engine: EngineDep, settings: SettingsDep, request: SearchRequest | SearchParams
) -> SearchResponse:
    query, k = checked_query(request.query, settings), checked_k(request.k, settings)
    outcome = await engine.search_async(
        query, k, request.mode, request.context, request.search_filter(), request.question_as_of()
    )
    note_search(len(outcome.hits), outcome.index_version)
    return search_response(outcome)


@router.post(
    "/search",
    operation_id="search_passages",
    summary="Search passages (JSON body)",
    description=DESCRIPTION,
    response_model=SearchResponse,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def search_post(request: SearchRequest, engine: EngineDep, settings: SettingsDep) -> SearchResponse:
    return await _search(engine, settings, request)


@router.get(
    "/search",
    operation_id="search_passages_get",
    summary="Search passages (query string)",
    description=DESCRIPTION + " Same as `POST /search`, for links and curl (the question is `q`).",
    response_model=SearchResponse,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def search_get(
    params: Annotated[SearchParams, Query()], engine: EngineDep, settings: SettingsDep
) -> SearchResponse:
    return await _search(engine, settings, params)


@router.post(
    "/search/documents",
    operation_id="search_documents",
    summary="Search documents (JSON body)",
    description="Rank whole documents for `query` rather than passages: dense and BM25 scores are "
    "each taken at a document's best passage, then fused (with `feedback`, once more after Rocchio "
    "feedback). For questions judged per document, such as BEIR benchmarks or 'which articles cover "
    "this?'. Each result cites the document's passage closest to the query and its answer sentence.",
    response_model=DocumentSearchResponse,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def search_documents_post(
    request: DocumentSearchRequest, engine: EngineDep, settings: SettingsDep
) -> DocumentSearchResponse:
    query, k = checked_query(request.query, settings), checked_k(request.k, settings)
    outcome = await engine.search_documents_async(
        query, k, request.feedback, request.search_filter(), request.question_as_of()
    )
    note_search(len(outcome.hits), outcome.index_version)
    return document_search_response(outcome)
