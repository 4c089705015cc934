"""Search results in the shapes LLM APIs take as tool output, built from a `SearchOutcome`
(the schemas are in `service.llm_schemas`).

- `CitedPassage`: a passage with everything a model needs to quote and cite it.
- Anthropic Messages API: one `search_result` content block per passage, its text split into one
  text block per sentence so a citation can point at a single sentence; ready to put in a
  `tool_result`. `passage_spans` maps each (result, block) back to exact document offsets.
- OpenAI: a function tool definition for `search` (its `filter` parameter's schema derived from
  the API's `SearchFilter`), and its result as the JSON string a `tool` message (Chat
  Completions) or `function_call_output` (Responses) carries.

The dicts follow the official SDKs' TypedDicts (tests validate them against `anthropic` and
`openai`), but neither SDK is imported here: they are not runtime dependencies.
Out of scope: calling either API.
"""

from __future__ import annotations

import json
from typing import Any

from corpus import Document
from index.search.options import DEFAULT_K
from index.search.retrieval import Hit, SearchOutcome
from index.text.text_spans import sentence_spans
from service.filter_schema import QuestionDates, SearchFilter
from service.llm_schemas import (
    CitationsOut,
    CitedPassage,
    PassageSpans,
    SearchResultBlockOut,
    TextBlockOut,
    format_citation,
)
from service.results import answer_out, applied_filters, citation_fields
from service.schemas import FILTER_DESCRIPTION

NO_ANSWER_NOTE = (
    "No passage is a confident match: the corpus most likely does not answer this question. "
    "Say so instead of answering from these passages."
)
ANSWER_NOTE = "Answer from these passages only, and cite the passages you use."


def citation_line(document: Document, start: int, end: int) -> str:
    return format_citation(
        document.id, document.title, document.source, document.author, document.published, start, end
    )


def cited_passage(hit: Hit) -> CitedPassage:
    document, chunk = hit.document, hit.chunk
    return CitedPassage(
        **citation_fields(document),
        rank=hit.rank,
        passage_id=chunk.id,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        answer=answer_out(hit.answer),
        score=hit.score,
        citation=citation_line(document, chunk.start, chunk.end),
    )


def note_for(outcome: SearchOutcome) -> str:
    return ANSWER_NOTE if outcome.answerable else NO_ANSWER_NOTE


# --- Anthropic Messages API -------------------------------------------------------------------


def sentence_blocks(document: Document, start: int, end: int) -> list[tuple[int, int]]:
    return list(sentence_spans(document.text, start, end)) or [(start, end)]


def search_result_block(hit: Hit) -> SearchResultBlockOut:
    document, chunk = hit.document, hit.chunk
    title = " - ".join(part for part in (document.title or document.id, document.source) if part)
    return SearchResultBlockOut(
        source=document.url or chunk.id,
        title=title,
        content=[
            TextBlockOut(text=document.text[s:e])
            for s, e in sentence_blocks(document, chunk.start, chunk.end)
        ],
        citations=CitationsOut(),
    )


def passage_spans(hit: Hit) -> PassageSpans:
    spans = sentence_blocks(hit.document, hit.chunk.start, hit.chunk.end)
    return PassageSpans(passage_id=hit.chunk.id, document_id=hit.document.id, block_spans=spans)


def anthropic_search_results(outcome: SearchOutcome) -> list[dict[str, Any]]:
    """`SearchResultBlockParam` dicts, one per passage, best first."""
    return [search_result_block(hit).model_dump() for hit in outcome.hits]


def anthropic_tool_result(outcome: SearchOutcome, tool_use_id: str) -> dict[str, Any]:
    """A `ToolResultBlockParam`: a text block with the guidance note, then the search results."""
    content: list[dict[str, Any]] = [{"type": "text", "text": note_for(outcome)}]
    return {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": content + anthropic_search_results(outcome),
    }


# --- OpenAI function tools --------------------------------------------------------------------

OPENAI_TOOL_NAME = "search_news_corpus"
OPENAI_TOOL_DESCRIPTION = (
    "Search a corpus of news articles for the passages that best answer a question. Returns "
    "passages with citation lines and the answer sentence of each; `answerable` false means the "
    "corpus does not answer the question. Cite passages by their `citation`. `filter` keeps to some "
    "documents (a publication, an author, a date range); a time range stated in the question is "
    "applied too, and the result's `filter_from_question` says which."
)


def _openai_subset(node: Any) -> Any:
    """A JSON schema in the subset OpenAI's function parameters document: `oneOf` becomes `anyOf`
    (the branches never overlap, so both mean the same), and titles go (noise for a model)."""
    if isinstance(node, dict):
        return {
            ("anyOf" if key == "oneOf" else key): _openai_subset(value)
            for key, value in node.items()
            if not (key == "title" and isinstance(value, str))  # a property named `title` stays
        }
    if isinstance(node, list):
        return [_openai_subset(value) for value in node]
    return node


def openai_filter_schema() -> dict[str, Any]:
    """`SearchFilter`'s JSON schema for OpenAI: `{"$ref": ..., "$defs": {...}}` (it is recursive, so
    its parts are `$defs` of the parameters object)."""
    schema: dict[str, Any] = _openai_subset(SearchFilter.model_json_schema())
    return schema


def openai_function_parameters(max_k: int) -> dict[str, Any]:
    """Not strict (`strict: false`): strict mode would make `k`, `filter` and the question-date
    options required. The options are `POST /search/openai`'s own (`SearchRequest`)."""
    filter_schema = openai_filter_schema()
    return {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "The question, in natural language."},
            "k": {
                "type": "integer",
                "minimum": 1,
                "maximum": max_k,
                "description": f"How many passages to return (default {DEFAULT_K}).",
            },
            "filter": {"$ref": filter_schema["$ref"], "description": FILTER_DESCRIPTION},
            "dates_from_question": {
                "type": "boolean",
                "description": QuestionDates.model_fields["dates_from_question"].description,
            },
            "as_of": {
                "type": "string",
                "format": "date",
                "description": QuestionDates.model_fields["as_of"].description,
            },
        },
        "required": ["query"],
        "additionalProperties": False,
        "$defs": filter_schema["$defs"],
    }


def openai_chat_tool(max_k: int) -> dict[str, Any]:
    """A Chat Completions `ChatCompletionFunctionToolParam`."""
    return {
        "type": "function",
        "function": {
            "name": OPENAI_TOOL_NAME,
            "description": OPENAI_TOOL_DESCRIPTION,
            "parameters": openai_function_parameters(max_k),
        },
    }


def openai_responses_tool(max_k: int) -> dict[str, Any]:
    """A Responses API `FunctionToolParam`."""
    return {
        "type": "function",
        "name": OPENAI_TOOL_NAME,
        "description": OPENAI_TOOL_DESCRIPTION,
        "parameters": openai_function_parameters(max_k),
        "strict": False,
    }


def openai_tool_output(outcome: SearchOutcome) -> str:
    """The tool's result, as the JSON text OpenAI function outputs carry."""
    payload = {
        "query": outcome.query,
        "answerable": outcome.answerable,
        "note": note_for(outcome),
        **applied_filters(outcome).model_dump(),
        "passages": [
            cited_passage(hit).model_dump(include={"rank", "passage_id", "citation", "url", "text", "answer"})
            for hit in outcome.hits
        ],
    }
    return json.dumps(payload, ensure_ascii=False)


def openai_tool_message(outcome: SearchOutcome, tool_call_id: str) -> dict[str, Any]:
    """A Chat Completions `ChatCompletionToolMessageParam` answering `tool_call_id`."""
    return {"role": "tool", "tool_call_id": tool_call_id, "content": openai_tool_output(outcome)}


def openai_function_call_output(outcome: SearchOutcome, call_id: str) -> dict[str, Any]:
    """A Responses API `function_call_output` input item answering `call_id`."""
    return {"type": "function_call_output", "call_id": call_id, "output": openai_tool_output(outcome)}
