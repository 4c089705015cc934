"""`/search/anthropic` and `/search/openai`: search results shaped as LLM tool output.

Each route has its own response schema so the OpenAPI spec stays exact; the shapes are built in
`service/llm_formats.py`. The plain `/search` response is unchanged.
"""

from __future__ import annotations

from fastapi import APIRouter

from index.search.retrieval import SearchOutcome
from service.deps import EngineDep, SettingsDep, checked_k, checked_query
from service.llm_formats import (
    note_for,
    openai_chat_tool,
    openai_responses_tool,
    openai_tool_output,
    passage_spans,
    search_result_block,
)
from service.llm_schemas import AnthropicSearchResponse, OpenAIToolDefinitions, OpenAIToolOutput
from service.request_context import note_search
from service.results import applied_filters
from service.routes.search import ERRORS
from service.schemas import SearchRequest

router = APIRouter(tags=["llm formats"])


async def _outcome(request: SearchRequest, engine: EngineDep, settings: SettingsDep) -> SearchOutcome:
    query, k = checked_query(request.query, settings), checked_k(request.k, settings)
    outcome = await engine.search_async(
        query, k, request.mode, request.context, request.search_filter(), request.question_as_of()
    )
    note_search(len(outcome.hits), outcome.index_version)
    return outcome


@router.post(
    "/search/anthropic",
    operation_id="search_passages_anthropic",
    summary="Search, as Anthropic search_result blocks",
    description="Same search as `POST /search`, answered as Anthropic Messages API `search_result` "
    "content blocks (one per passage, one text block per sentence, citations enabled) ready to "
    "return in a `tool_result`, so Claude can cite single sentences. `answerable` false means the "
    "corpus does not answer the question.",
    response_model=AnthropicSearchResponse,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def search_anthropic(
    request: SearchRequest, engine: EngineDep, settings: SettingsDep
) -> AnthropicSearchResponse:
    outcome = await _outcome(request, engine, settings)
    return AnthropicSearchResponse(
        query=outcome.query,
        index_version=outcome.index_version,
        answerable=outcome.answerable,
        note=note_for(outcome),
        content=[search_result_block(hit) for hit in outcome.hits],
        passages=[passage_spans(hit) for hit in outcome.hits],
        **applied_filters(outcome).model_dump(),
    )


@router.post(
    "/search/openai",
    operation_id="search_passages_openai",
    summary="Search, as an OpenAI function tool result",
    description="Same search as `POST /search`, answered as the result of the OpenAI function tool "
    "from `GET /search/openai/tool`: `output` is the JSON text to return to the model (passages "
    "with citation lines and answer sentences, and the `answerable` flag).",
    response_model=OpenAIToolOutput,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def search_openai(request: SearchRequest, engine: EngineDep, settings: SettingsDep) -> OpenAIToolOutput:
    outcome = await _outcome(request, engine, settings)
    return OpenAIToolOutput(
        query=outcome.query, answerable=outcome.answerable, output=openai_tool_output(outcome)
    )


@router.get(
    "/search/openai/tool",
    operation_id="openai_tool_definition",
    summary="OpenAI function tool definition",
    description="The function tool definition to register with OpenAI (Chat Completions and "
    "Responses shapes); answer its calls with `POST /search/openai`.",
    response_model=OpenAIToolDefinitions,
)
def openai_tool(settings: SettingsDep) -> OpenAIToolDefinitions:
    return OpenAIToolDefinitions(
        chat_completions=openai_chat_tool(settings.max_k), responses=openai_responses_tool(settings.max_k)
    )
