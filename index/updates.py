"""Changing what is indexed: full syncs (`rag build`) and per-document upserts and deletes.

Each change reads the live generation, rebuilds from its documents plus the change (re-embedding
only text not embedded before) and commits a new generation, all under the store's write lock so
concurrent writers, in one process or several, never lose each other's changes: every writer
starts from whatever CURRENT names once it holds the lock, never from a stale copy.

A caller that already holds the live generation in memory passes it as `live`; it is used only
if CURRENT still names it under the lock, which saves reading and verifying it from disk.
Out of scope: parsing documents (corpus/) and swapping the live retriever (service/engine.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from corpus import Document
from index.analysis import ANALYSER_VERSION
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


class MissingDocumentsError(LookupError):
    """Asked to remove documents the index does not hold; nothing was changed."""

    def __init__(self, document_ids: Sequence[str]) -> None:
        super().__init__(f"no document with id {', '.join(repr(i) for i in document_ids)}")
        self.document_ids = list(document_ids)


@dataclass(frozen=True)
class UpdateResult:
    index: LoadedIndex
    changed: bool
    added: list[str]
    replaced: list[str]
    removed: list[str]
    unchanged: list[str]


def build_fingerprint(documents: Sequence[Document], settings: IndexSettings, embedder: Embedder) -> str:
    # The model's name stands for its dimension too, so a no-op check never loads the model. The
    # analyser's version is there so that a build after a change to it re-indexes BM25 terms.
    parts = (
        corpus_fingerprint(documents)
        + settings_fingerprint(settings, embedder.model_name, 0)
        + f"analyser {ANALYSER_VERSION}"
    )
    return hashlib.sha256(parts.encode()).hexdigest()


def sync_corpus(
    store: IndexStore,
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
    force: bool = False,
    show_progress: bool = False,
    live: LoadedIndex | None = None,
) -> UpdateResult:
    """Make the index hold exactly `documents`; a no-op when nothing changed since the last sync."""
    fingerprint = build_fingerprint(documents, settings, embedder)
    with store.write_lock():
        previous = _load_previous(store, embedder, live, any_model=True)
        if previous is not None and not force and previous.manifest.get("built_from") == fingerprint:
            names = sorted(previous.data.documents)
            return UpdateResult(previous, False, [], [], [], names)
        return _commit(
            store,
            previous,
            list(documents),
            embedder,
            settings,
            fingerprint,
            show_progress,
            force,
        )


def upsert_documents(
    store: IndexStore,
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
    live: LoadedIndex | None = None,
) -> UpdateResult:
    """Add or replace `documents` by id; a no-op (no new generation) when all are unchanged."""
    with store.write_lock():
        previous = _load_previous(store, embedder, live)
        existing = dict(previous.data.documents) if previous else {}
        existing.update({document.id: document for document in documents})
        built_from = previous.manifest.get("built_from") if previous else None
        return _commit(store, previous, list(existing.values()), embedder, settings, built_from, False)


def remove_documents(
    store: IndexStore,
    document_ids: Sequence[str],
    embedder: Embedder,
    settings: IndexSettings,
    live: LoadedIndex | None = None,
) -> UpdateResult:
    """Remove `document_ids`; raises MissingDocumentsError (changing nothing) if any is unknown."""
    with store.write_lock():
        previous = _load_previous(store, embedder, live)
        existing = dict(previous.data.documents) if previous else {}
        missing = [doc_id for doc_id in document_ids if doc_id not in existing]
        if missing:
            raise MissingDocumentsError(missing)
        unwanted = set(document_ids)
        kept = [document for doc_id, document in existing.items() if doc_id not in unwanted]
        built_from = previous.manifest.get("built_from") if previous else None
        return _commit(store, previous, kept, embedder, settings, built_from, False)


def _load_previous(
    store: IndexStore, embedder: Embedder, live: LoadedIndex | None, any_model: bool = False
) -> LoadedIndex | None:
    """The live generation a change builds on. None only when there is truly no index: an index
    that exists but cannot be loaded stops the write (IndexCorruptError) instead of being
    replaced by one without its documents. `any_model` accepts an index built with another model
    (its documents are then embedded again); otherwise that is an IndexMismatchError."""
    try:
        if (
            live is not None
            and live.data.model_name == embedder.model_name
            and store.current_version() == live.version
        ):
            return live
        return store.load(embedder.model_name)
    except IndexNotFoundError:
        return None
    except IndexMismatchError:
        if any_model:
            return _loaded_or_damaged(store)
        raise
    except IndexCorruptError as error:
        raise IndexCorruptError(f"Nothing was changed: {error}") from error


def _loaded_or_damaged(store: IndexStore) -> LoadedIndex:
    try:
        return store.load()
    except IndexCorruptError as error:
        raise IndexCorruptError(f"Nothing was changed: {error}") from error


def _commit(
    store: IndexStore,
    previous: LoadedIndex | None,
    documents: list[Document],
    embedder: Embedder,
    settings: IndexSettings,
    built_from: str | None,
    show_progress: bool,
    force: bool = False,
) -> UpdateResult:
    """Commit `documents` as a new generation; `force` rebuilds from scratch, re-embedding all."""
    before = previous.data.documents if previous else {}
    after = {document.id: document for document in documents}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    replaced = sorted(i for i in set(after) & set(before) if after[i].content_hash != before[i].content_hash)
    unchanged = sorted(i for i in set(after) & set(before) if i not in replaced)
    same_settings = previous is not None and previous.data.settings == settings
    unchanged_everything = not (added or removed or replaced)
    if (
        not force
        and previous is not None
        and same_settings
        and unchanged_everything
        and built_from == previous.manifest.get("built_from")
    ):
        return UpdateResult(previous, False, [], [], [], unchanged)
    reusable = previous is not None and previous.data.model_name == embedder.model_name and not force
    known = known_vectors_of(previous.data) if previous is not None and reusable else {}
    data = build_index_data(documents, embedder, settings, known_vectors=known, show_progress=show_progress)
    loaded = store.commit(data, built_from)
    return UpdateResult(loaded, True, added, replaced, removed, unchanged)
