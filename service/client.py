"""A small Python client for the HTTP API (httpx), returning the service's own typed models.

    from service.client import RagClient
    with RagClient("http://127.0.0.1:8000") as rag:
        response = rag.search("what projects could Larijani's visit accelerate?", k=3)
        print(response.results[0].answer.text)

Every error response becomes a `RagClientError` carrying the API's `code` and `message`; a
server that cannot be reached becomes one too (code `unreachable`). Only httpx and the pure
pydantic schemas are imported: no FastAPI, FAISS, torch, bm25s or scikit-learn. A client is for one
collection, `default` unless `collection=` names another. Out of scope:
retries and the write routes (add and remove documents).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from index.search.modes import Mode
from index.search.options import DEFAULT_DOCUMENT_K, DEFAULT_K, DEFAULT_MODE
from service.collection_names import DEFAULT_COLLECTION
from service.llm_schemas import AnthropicSearchResponse, OpenAIToolOutput
from service.schemas import (
    DocumentListResponse,
    DocumentResponse,
    DocumentSearchResponse,
    HealthResponse,
    SearchResponse,
)

ModelT = TypeVar("ModelT", bound=BaseModel)


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
        self, query: str, k: int = DEFAULT_K, mode: Mode = DEFAULT_MODE, context: int = 0
    ) -> SearchResponse:
        return self._call(SearchResponse, "POST", "/search", json=_search_body(query, k, mode, context))

    def search_documents(
        self, query: str, k: int = DEFAULT_DOCUMENT_K, feedback: bool = False
    ) -> DocumentSearchResponse:
        body = {"query": query, "k": k, "feedback": feedback}
        return self._call(DocumentSearchResponse, "POST", "/search/documents", json=body)

    def search_anthropic(
        self, query: str, k: int = DEFAULT_K, mode: Mode = DEFAULT_MODE, context: int = 0
    ) -> AnthropicSearchResponse:
        body = _search_body(query, k, mode, context)
        return self._call(AnthropicSearchResponse, "POST", "/search/anthropic", json=body)

    def search_openai(
        self, query: str, k: int = DEFAULT_K, mode: Mode = DEFAULT_MODE, context: int = 0
    ) -> OpenAIToolOutput:
        return self._call(
            OpenAIToolOutput, "POST", "/search/openai", json=_search_body(query, k, mode, context)
        )

    def documents(self) -> DocumentListResponse:
        return self._call(DocumentListResponse, "GET", "/documents")

    def document(self, document_id: str) -> DocumentResponse:
        return self._call(DocumentResponse, "GET", f"/documents/{quote(document_id, safe='')}")


def _search_body(query: str, k: int, mode: Mode, context: int) -> dict[str, object]:
    return {"query": query, "k": k, "mode": str(mode), "context": context}


def _error_from(response: httpx.Response) -> RagClientError:
    try:
        error = response.json()["error"]
        return RagClientError(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return RagClientError(response.status_code, "http_error", response.text[:200])
