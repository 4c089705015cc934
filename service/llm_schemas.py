"""Schemas of the LLM tool formats: pydantic models only (no server code, like `service.schemas`).

`CitedPassage` is a passage with everything a model needs to quote and cite it (the MCP tools,
the OpenAI output and the Python client share it); the rest are the Anthropic `search_result`
blocks and the OpenAI function tool's output. They are built in `service.llm_formats`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.schemas import AnswerOut, AppliedFilters, DocumentMetadata


def format_citation(
    document_id: str, title: str, source: str, author: str, published: str, start: int, end: int
) -> str:
    """`"Title", Publication, Author, date (document id, characters start-end)`."""
    parts = [f'"{title}"' if title else document_id]
    parts += [part for part in (source, author, published) if part]
    return f"{', '.join(parts)} ({document_id}, characters {start}-{end})"


class CitationFields(DocumentMetadata):
    document_id: str = Field(description="Document id: pass it to `fetch` to read the whole document.")


class CitedPassage(CitationFields):
    rank: int = Field(description="1-based rank, best first.")
    passage_id: str = Field(
        description="`<document id>#<start>-<end>`: pass it to `fetch` to read exactly this passage."
    )
    start: int = Field(description="Character offset of the passage in the document text.")
    end: int = Field(description="Character offset just past the passage in the document text.")
    text: str = Field(description="The passage: exactly document text[start:end].")
    answer: AnswerOut = Field(description="The sentence of the passage that best answers the question.")
    score: float = Field(description="Ranking score (higher is better; comparable within one search).")
    citation: str = Field(description="A ready-made citation line for this passage.")


class SearchToolResult(AppliedFilters):
    """The MCP `search` tool's result, with the filters it kept to (`filter`, `filter_from_question`)."""

    query: str = Field(description="The question as searched.")
    answerable: bool = Field(description="False when the corpus most likely does not answer the question.")
    confidence: float = Field(description="Probability (0 to 1) that the passages answer the question.")
    note: str = Field(description="How to use these passages.")
    index_version: str = Field(description="Index generation that answered.")
    passages: list[CitedPassage] = Field(description="Passages, best first.")


class FetchToolResult(CitationFields):
    """The MCP `fetch` tool's result: a whole document or one exact passage."""

    id: str = Field(description="The id as requested.")
    start: int = Field(description="Character offset of `text` in the document.")
    end: int = Field(description="Character offset just past `text` in the document.")
    text: str = Field(description="The document text, or the passage: document text[start:end].")
    citation: str = Field(description="A ready-made citation line.")


class TextBlockOut(BaseModel):
    type: Literal["text"] = Field("text", description="Always `text`.")
    text: str = Field(description="One sentence of the passage.")


class CitationsOut(BaseModel):
    enabled: bool = Field(True, description="Lets Claude cite this result's sentences.")


class SearchResultBlockOut(BaseModel):
    type: Literal["search_result"] = Field("search_result", description="Always `search_result`.")
    source: str = Field(description="The article URL when known, else the passage id.")
    title: str = Field(description="Document title and publication.")
    content: list[TextBlockOut] = Field(description="The passage, one text block per sentence.")
    citations: CitationsOut = Field(description="Citation settings: enabled.")


class PassageSpans(BaseModel):
    passage_id: str = Field(description="The passage (`<document id>#<start>-<end>`).")
    document_id: str = Field(description="The document the passage comes from.")
    block_spans: list[tuple[int, int]] = Field(
        description="Document offsets [start, end) of each text block, in block order: a Claude "
        "citation's `start_block_index`..`end_block_index` maps back to exact characters."
    )


class AnthropicSearchResponse(AppliedFilters):
    query: str = Field(description="The question as received.")
    index_version: str = Field(description="Index generation that answered.")
    answerable: bool = Field(description="False when the corpus most likely does not answer the question.")
    note: str = Field(description="Guidance for the model; send it as a text block before the results.")
    content: list[SearchResultBlockOut] = Field(
        description="Anthropic `search_result` blocks, one per passage, best first: put them in a "
        "`tool_result` block's `content`."
    )
    passages: list[PassageSpans] = Field(
        description="For each block of `content`, its passage and the document offsets of its text "
        "blocks, to map Claude's citations back to exact characters."
    )


class OpenAIToolOutput(BaseModel):
    query: str = Field(description="The question as received.")
    answerable: bool = Field(description="False when the corpus most likely does not answer the question.")
    output: str = Field(
        description="The function tool's result as JSON text: the `content` of a Chat Completions "
        "`tool` message, or the `output` of a Responses `function_call_output` item."
    )


class OpenAIToolDefinitions(BaseModel):
    chat_completions: dict[str, Any] = Field(description="The tool for Chat Completions `tools=[...]`.")
    responses: dict[str, Any] = Field(description="The same tool for the Responses API `tools=[...]`.")
