"""The engine the routes and the CLI share: one embedder, the live index, and index updates.

The live `Retriever` is replaced as a whole after each committed change, so a query that
started on one generation finishes on it (it holds a reference to that generation's data).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from corpus import Document
from index.embedding import Embedder, SentenceTransformerEmbedder
from index.retrieval import Mode, Retriever, SearchOutcome
from index.store import IndexStore, LoadedIndex
from index.updates import UpdateResult, remove_documents, sync_corpus, upsert_documents
from service.config import Settings


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
        self._swap = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None) -> Engine:
        return cls(
            settings=settings,
            embedder=embedder or SentenceTransformerEmbedder(settings.model),
            store=IndexStore(settings.index_dir),
        )

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._install(self.store.load(self.embedder.model_name, self.embedder.dimension))
        if self._retriever is None:  # pragma: no cover - _install always sets it
            raise RuntimeError("index not loaded")
        return self._retriever

    def _install(self, loaded: LoadedIndex) -> None:
        retriever = Retriever(loaded.data, loaded.version, self.embedder, self.settings.retrieval_options())
        with self._swap:
            self._retriever = retriever

    def search(self, query: str, k: int, mode: Mode) -> SearchOutcome:
        return self.retriever.search(query, k=k, mode=mode)

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
        result = sync_corpus(
            self.store, documents, self.embedder, self.settings.index_settings(), force, show_progress
        )
        self._install(result.index)
        return result

    def upsert(self, documents: Sequence[Document]) -> UpdateResult:
        result = upsert_documents(self.store, documents, self.embedder, self.settings.index_settings())
        self._install(result.index)
        return result

    def remove(self, document_ids: Sequence[str]) -> UpdateResult:
        missing = [i for i in document_ids if i not in self.retriever.data.documents]
        if missing:
            raise DocumentNotFoundError(missing[0])
        result = remove_documents(self.store, document_ids, self.embedder, self.settings.index_settings())
        self._install(result.index)
        return result
