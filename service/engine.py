"""The engine the routes and the CLI share: one embedder, the live index, and index updates.

The live `Retriever` is replaced as a whole after each committed change, so a query that
started on one generation finishes on it (it holds a reference to that generation's data).

Writes in this process are serialised by `_write` (and across processes by the store's file
lock); the new generation is durable on disk before a write returns and is installed before the
lock is released, so installs never go backwards. A generation committed by another process
(`rag add` beside a running server) is noticed on the next request: CURRENT no longer names the
live version, and the first request that finds no write in progress reloads it; the others keep
answering from the old generation meanwhile, never from a half-swapped one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from corpus import Document
from index.context import widen_outcome
from index.document_ranking import DocumentSearchOutcome, search_documents
from index.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder, Vectors
from index.errors import IndexError_
from index.modes import Mode
from index.retrieval import Retriever, SearchOutcome
from index.store import IndexStore, LoadedIndex
from index.updates import (
    MissingDocumentsError,
    UpdateResult,
    remove_documents,
    sync_corpus,
    upsert_documents,
)
from service.batching import MicroBatcher
from service.config import EmbedderKind, Settings

logger = logging.getLogger("rag.engine")


class DocumentNotFoundError(LookupError):
    def __init__(self, document_id: str) -> None:
        super().__init__(f"no document with id {document_id!r}")
        self.document_id = document_id


@dataclass
class Engine:
    settings: Settings
    embedder: Embedder
    store: IndexStore

    def __post_init__(self) -> None:
        self._retriever: Retriever | None = None
        self._live: LoadedIndex | None = None
        self._swap = threading.Lock()
        self._write = threading.Lock()  # writes and reloads; readers never wait for it
        self._query_batcher = MicroBatcher(
            self.embedder.embed_batch,
            max_batch=self.settings.query_batch_size,
            max_wait_seconds=self.settings.query_batch_wait_ms / 1000,
        )

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None) -> Engine:
        return cls(
            settings=settings,
            embedder=embedder or embedder_for(settings),
            store=IndexStore(settings.index_dir),
        )

    @property
    def retriever(self) -> Retriever:
        current = self._retriever
        if current is None:
            with self._write:
                if self._retriever is None:
                    self._install(self.store.load(self.embedder.model_name, self.embedder.dimension))
            current = self._retriever
        elif self.store.current_version() not in (None, current.version):
            current = self._reload_committed_elsewhere(current)
        if current is None:  # pragma: no cover - _install always sets it
            raise RuntimeError("index not loaded")
        return current

    def _reload_committed_elsewhere(self, current: Retriever) -> Retriever:
        # Non-blocking: while a write runs here it will install its own generation; meanwhile
        # (and while another request reloads) the old generation keeps answering.
        if not self._write.acquire(blocking=False):
            return current
        try:
            if self.store.current_version() not in (None, self._retriever and self._retriever.version):
                self._install(self.store.load(self.embedder.model_name, self.embedder.dimension))
        except IndexError_ as error:
            logger.warning("keeping index %s: cannot load the new generation: %s", current.version, error)
        finally:
            self._write.release()
        return self._retriever or current

    def _install(self, loaded: LoadedIndex) -> None:
        retriever = Retriever(loaded.data, loaded.version, self.embedder, self.settings.retrieval_options())
        with self._swap:
            self._retriever = retriever
            self._live = loaded

    def _live_hint(self) -> LoadedIndex | None:
        with self._swap:
            return self._live

    def search(self, query: str, k: int, mode: Mode, context: int = 0) -> SearchOutcome:
        """`context` > 0 widens each passage by that many neighbouring chunks (index/context.py)."""
        # Encoded through the batcher so concurrent requests share one model call.
        return self._search_with(self._query_batcher.embed(query), query, k, mode, context)

    async def search_async(self, query: str, k: int, mode: Mode, context: int = 0) -> SearchOutcome:
        """`search` for request handlers: the question waits for its batch on the event loop, and
        only the search itself (index reads, no model call) runs on a worker thread."""
        vector = await self._query_batcher.embed_async(query)
        return await run_in_threadpool(self._search_with, vector, query, k, mode, context)

    async def search_documents_async(self, query: str, k: int, feedback: bool) -> DocumentSearchOutcome:
        """Documents ranked by document-level fusion (index/document_ranking.py), each cited by its
        closest passage; with `feedback`, after one round of Rocchio feedback."""
        vector = await self._query_batcher.embed_async(query)
        return await run_in_threadpool(search_documents, self.retriever, query, vector, k, feedback)

    def _search_with(self, vector: Vectors, query: str, k: int, mode: Mode, context: int) -> SearchOutcome:
        retriever = self.retriever  # one generation for the search and its context window
        outcome = retriever.search(query, k=k, mode=mode, query_vector=vector)
        return widen_outcome(outcome, retriever.data, context)

    def documents(self) -> list[Document]:
        return list(self.retriever.data.documents.values())

    def document(self, document_id: str) -> Document:
        document = self.retriever.data.documents.get(document_id)
        if document is None:
            raise DocumentNotFoundError(document_id)
        return document

    def sync(
        self, documents: Sequence[Document], force: bool = False, show_progress: bool = False
    ) -> UpdateResult:
        with self._write:
            result = sync_corpus(
                self.store,
                documents,
                self.embedder,
                self.settings.index_settings(),
                force,
                show_progress,
                live=self._live_hint(),
            )
            self._install(result.index)
        return result

    def upsert(self, documents: Sequence[Document]) -> UpdateResult:
        """Add or replace documents; durable on disk and live when this returns."""
        with self._write:
            result = upsert_documents(
                self.store,
                documents,
                self.embedder,
                self.settings.index_settings(),
                live=self._live_hint(),
            )
            self._install(result.index)
        return result

    def remove(self, document_ids: Sequence[str]) -> UpdateResult:
        """Remove documents; DocumentNotFoundError (nothing changed) if one is not indexed."""
        with self._write:
            try:
                result = remove_documents(
                    self.store,
                    document_ids,
                    self.embedder,
                    self.settings.index_settings(),
                    live=self._live_hint(),
                )
            except MissingDocumentsError as error:
                raise DocumentNotFoundError(error.document_ids[0]) from error
            self._install(result.index)
        return result


def embedder_for(settings: Settings) -> Embedder:
    if settings.embedder == EmbedderKind.HASHING:
        return HashingEmbedder()
    return SentenceTransformerEmbedder(settings.model)
