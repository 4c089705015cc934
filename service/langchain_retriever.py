"""A LangChain `BaseRetriever` over the HTTP API: each passage becomes a `Document` whose
`page_content` is the passage and whose metadata carries the citation.

    from service.client import FilterOptions, RagClient
from service.filter_schema import QuestionDates, SearchFilter
    from service.langchain_retriever import RagRetriever
    retriever = RagRetriever(client=RagClient("http://127.0.0.1:8000"), k=4)
    docs = retriever.invoke("what projects could Larijani's visit accelerate?")
    dawn = {"must": [{"key": "source", "match": {"value": "Dawn"}}]}
    docs = retriever.invoke("security talks", filter=dawn)  # this call only

Filters: the `filter`, `dates_from_question` and `as_of` fields apply to every call; the same
names as keyword arguments of `invoke` override them for one call (docs/filters.md).

Metadata of each `Document`: `id` (passage id), `document_id`, `title`, `source`, `author`, `url`,
`published`, `start`, `end`, `answer` (the answer sentence) with `answer_start`/`answer_end`
and `answer_field` (`text`, or the metadata field the answer is, its offsets then into that field),
`score`, `rank`, `answerable` (of the whole search), `index_version` and `citation`.
Out of scope: a native async client (LangChain's async calls run the sync one in an executor).
"""

from __future__ import annotations

from typing import Any, Unpack

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from index.search.modes import Mode
from index.search.options import DEFAULT_K, DEFAULT_MODE, MAX_CONTEXT
from service.client import FilterOptions, RagClient
from service.filter_schema import QuestionDates, SearchFilter
from service.llm_schemas import format_citation
from service.schemas import FILTER_DESCRIPTION, MODE_DESCRIPTION, SearchResponse, SearchResultItem


def citation_of(result: SearchResultItem) -> str:
    doc = result.document
    return format_citation(doc.id, doc.title, doc.source, doc.author, doc.published, result.start, result.end)


def to_documents(response: SearchResponse) -> list[Document]:
    documents = []
    for result in response.results:
        metadata: dict[str, Any] = {
            "id": result.chunk_id,
            "document_id": result.document.id,
            "title": result.document.title,
            "source": result.document.source,
            "author": result.document.author,
            "url": result.document.url,
            "published": result.document.published,
            "start": result.start,
            "end": result.end,
            "answer": result.answer.text,
            "answer_start": result.answer.start,
            "answer_end": result.answer.end,
            "answer_field": result.answer.field,
            "score": result.score,
            "rank": result.rank,
            "answerable": response.answerable,
            "index_version": response.index_version,
            "citation": citation_of(result),
        }
        documents.append(Document(id=result.chunk_id, page_content=result.text, metadata=metadata))
    return documents


class RagRetriever(BaseRetriever):
    """Passages from the rag-service for a query, best first, as LangChain documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: RagClient = Field(description="The HTTP client of the service.")
    k: int = Field(DEFAULT_K, ge=1, description="How many passages per query.")
    mode: Mode = Field(DEFAULT_MODE, description=MODE_DESCRIPTION)
    context: int = Field(
        0, ge=0, le=MAX_CONTEXT, description="Neighbouring chunks to add around each passage."
    )

    filter: SearchFilter | None = Field(None, description=FILTER_DESCRIPTION)
    dates_from_question: bool = Field(
        True, description=QuestionDates.model_fields["dates_from_question"].description
    )
    as_of: str | None = Field(None, description=QuestionDates.model_fields["as_of"].description)

    def _filters(self) -> FilterOptions:
        filters = FilterOptions(dates_from_question=self.dates_from_question)
        if self.filter is not None:
            filters["filter"] = self.filter
        if self.as_of is not None:
            filters["as_of"] = self.as_of
        return filters

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Unpack[FilterOptions]
    ) -> list[Document]:
        """`overrides`: `invoke`'s keyword arguments `filter`, `dates_from_question`, `as_of`."""
        filters: FilterOptions = {**self._filters(), **overrides}
        response = self.client.search(query, k=self.k, mode=self.mode, context=self.context, **filters)
        return to_documents(response)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        **overrides: Unpack[FilterOptions],
    ) -> list[Document]:
        # LangChain's own default would drop the overrides.
        return await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **overrides
        )
