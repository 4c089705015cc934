"""A small Python client for the HTTP API (httpx), returning the service's own typed models.

    from service.client import RagClient
    with RagClient("http://127.0.0.1:8000") as rag:
        response = rag.search("what projects could Larijani's visit accelerate?", k=3)
        print(response.results[0].answer.text)

The search methods take the filters of `POST /search` as keyword arguments (`FilterOptions`:
`filter`, `dates_from_question`, `as_of`; docs/filters.md). Every error response becomes a `RagClientError` carrying the API's `code` and `message`; a
server that cannot be reached becomes one too (code `unreachable`). Only httpx and the pure
pydantic schemas are imported: no FastAPI, FAISS, torch, bm25s or scikit-learn. A client is for one
collection, `default` unless `collection=` names another. Out of scope:
retries and the write routes (add and remove documents).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from index.search.modes import Mode
from index.search.options import DEFAULT_DOCUMENT_K, DEFAULT_K, DEFAULT_MODE
from service.collection_names import DEFAULT_COLLECTION
from service.filter_schema import SearchFilter
from service.llm_schemas import AnthropicSearchResponse, OpenAIToolOutput
from service.schemas import (
    DocumentListResponse,
    DocumentResponse,
    DocumentSearchResponse,
    HealthResponse,
    SearchResponse,
)

ModelT = TypeVar("ModelT", bound=BaseModel)


class FilterOptions(TypedDict, total=False):
    """What a search keeps to, as `POST /search` takes it (docs/filters.md): `filter` as a
    `SearchFilter` or as its JSON (a dict, sent as given: the server checks it); `as_of` as an ISO
    8601 date or a `date`."""

    filter: SearchFilter | Mapping[str, Any]
    dates_from_question: bool
    as_of: str | dt.date


class RagClientError(Exception):
    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class RagClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
        collection: str = DEFAULT_COLLECTION,
    ) -> None:
        """`http` lets a caller bring its own client (e.g. FastAPI's TestClient in tests);
        `collection` sends every request to that collection's routes (docs/collections.md)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._prefix = (
            "" if collection == DEFAULT_COLLECTION else f"/collections/{quote(collection, safe='')}"
        )
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self._http.headers.update(headers)

    def __enter__(self) -> RagClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, model: type[ModelT], method: str, path: str, **kwargs: Any) -> ModelT:
        try:
            response = self._http.request(method, f"{self._prefix}{path}", **kwargs)
        except httpx.HTTPError as error:
            raise RagClientError(None, "unreachable", f"{type(error).__name__}: {error}") from error
        if response.is_error:
            raise _error_from(response)
        return model.model_validate_json(response.content)

    def health(self) -> HealthResponse:
        return self._call(HealthResponse, "GET", "/healthz")

    def search(
        self,
        query: str,
        k: int = DEFAULT_K,
        mode: Mode = DEFAULT_MODE,
        context: int = 0,
        **filters: Unpack[FilterOptions],
    ) -> SearchResponse:
        body = _search_body(query, k, mode, context) | _filter_body(filters)
        return self._call(SearchResponse, "POST", "/search", json=body)

    def search_documents(
        self,
        query: str,
        k: int = DEFAULT_DOCUMENT_K,
        feedback: bool = False,
        **filters: Unpack[FilterOptions],
    ) -> DocumentSearchResponse:
        body = {"query": query, "k": k, "feedback": feedback} | _filter_body(filters)
        return self._call(DocumentSearchResponse, "POST", "/search/documents", json=body)

    def search_anthropic(
        self,
        query: str,
        k: int = DEFAULT_K,
        mode: Mode = DEFAULT_MODE,
        context: int = 0,
        **filters: Unpack[FilterOptions],
    ) -> AnthropicSearchResponse:
        body = _search_body(query, k, mode, context) | _filter_body(filters)
        return self._call(AnthropicSearchResponse, "POST", "/search/anthropic", json=body)

    def search_openai(
        self,
        query: str,
        k: int = DEFAULT_K,
        mode: Mode = DEFAULT_MODE,
        context: int = 0,
        **filters: Unpack[FilterOptions],
    ) -> OpenAIToolOutput:
        body = _search_body(query, k, mode, context) | _filter_body(filters)
        return self._call(OpenAIToolOutput, "POST", "/search/openai", json=body)

    def documents(self) -> DocumentListResponse:
        return self._call(DocumentListResponse, "GET", "/documents")

    def document(self, document_id: str) -> DocumentResponse:
        return self._call(DocumentResponse, "GET", f"/documents/{quote(document_id, safe='')}")


def _search_body(query: str, k: int, mode: Mode, context: int) -> dict[str, object]:
    return {"query": query, "k": k, "mode": str(mode), "context": context}


def _filter_body(options: FilterOptions) -> dict[str, object]:
    unknown = set(options) - set(FilterOptions.__annotations__)
    if unknown:  # mypy catches these; an untyped caller's typo must not search unfiltered
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    body: dict[str, object] = {}
    if "filter" in options:
        given = options["filter"]
        body["filter"] = given.to_json() if isinstance(given, SearchFilter) else dict(given)
    if "dates_from_question" in options:
        body["dates_from_question"] = options["dates_from_question"]
    if "as_of" in options:
        as_of = options["as_of"]
        body["as_of"] = as_of if isinstance(as_of, str) else as_of.isoformat()
    return body


def _error_from(response: httpx.Response) -> RagClientError:
    try:
        error = response.json()["error"]
        return RagClientError(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return RagClientError(response.status_code, "http_error", response.text[:200])
