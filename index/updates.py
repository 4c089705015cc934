"""Changing what is indexed: full syncs (`rag build`) and per-document upserts and deletes.

Each change loads the live generation, rebuilds from its documents plus the change (re-embedding
only text not embedded before) and commits a new generation, all under the store's write lock so
concurrent writers, in one process or several, never lose each other's changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from corpus import Document
from index.building import (
    IndexSettings,
    build_index_data,
    corpus_fingerprint,
    known_vectors_of,
    settings_fingerprint,
)
from index.embedding import Embedder
from index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.store import IndexStore, LoadedIndex


@dataclass(frozen=True)
class UpdateResult:
    index: LoadedIndex
    changed: bool
    added: list[str]
    replaced: list[str]
    removed: list[str]
    unchanged: list[str]


def build_fingerprint(documents: Sequence[Document], settings: IndexSettings, embedder: Embedder) -> str:
    # The model's name stands for its dimension too, so a no-op check never loads the model.
    parts = corpus_fingerprint(documents) + settings_fingerprint(settings, embedder.model_name, 0)
    return hashlib.sha256(parts.encode()).hexdigest()


def sync_corpus(
    store: IndexStore,
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
    force: bool = False,
    show_progress: bool = False,
) -> UpdateResult:
    """Make the index hold exactly `documents`; a no-op when nothing changed since the last sync."""
    fingerprint = build_fingerprint(documents, settings, embedder)
    with store.write_lock():
        previous = _load_reusable(store, embedder)
        if previous is not None and not force and previous.manifest.get("built_from") == fingerprint:
            names = sorted(previous.data.documents)
            return UpdateResult(previous, False, [], [], [], names)
        return _commit(store, previous, list(documents), embedder, settings, fingerprint, show_progress)


def upsert_documents(
    store: IndexStore,
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
) -> UpdateResult:
    with store.write_lock():
        previous = _load_reusable(store, embedder)
        existing = dict(previous.data.documents) if previous else {}
        existing.update({document.id: document for document in documents})
        built_from = previous.manifest.get("built_from") if previous else None
        return _commit(store, previous, list(existing.values()), embedder, settings, built_from, False)


def remove_documents(
    store: IndexStore, document_ids: Sequence[str], embedder: Embedder, settings: IndexSettings
) -> UpdateResult:
    with store.write_lock():
        previous = _load_reusable(store, embedder)
        existing = dict(previous.data.documents) if previous else {}
        kept = [document for doc_id, document in existing.items() if doc_id not in set(document_ids)]
        built_from = previous.manifest.get("built_from") if previous else None
        return _commit(store, previous, kept, embedder, settings, built_from, False)


def _load_reusable(store: IndexStore, embedder: Embedder) -> LoadedIndex | None:
    """The live generation if it can seed a rebuild, else None (first build, other model, damage)."""
    try:
        return store.load(embedder.model_name)
    except (IndexNotFoundError, IndexMismatchError, IndexCorruptError):
        return None


def _commit(
    store: IndexStore,
    previous: LoadedIndex | None,
    documents: list[Document],
    embedder: Embedder,
    settings: IndexSettings,
    built_from: str | None,
    show_progress: bool,
) -> UpdateResult:
    before = previous.data.documents if previous else {}
    after = {document.id: document for document in documents}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    replaced = sorted(i for i in set(after) & set(before) if after[i].content_hash != before[i].content_hash)
    unchanged = sorted(i for i in set(after) & set(before) if i not in replaced)
    same_settings = previous is not None and previous.data.settings == settings
    unchanged_everything = not (added or removed or replaced)
    if (
        previous is not None
        and same_settings
        and unchanged_everything
        and built_from == previous.manifest.get("built_from")
    ):
        return UpdateResult(previous, False, [], [], [], unchanged)
    known = known_vectors_of(previous.data) if previous is not None else {}
    data = build_index_data(documents, embedder, settings, known_vectors=known, show_progress=show_progress)
    loaded = store.commit(data, built_from)
    return UpdateResult(loaded, True, added, replaced, removed, unchanged)
