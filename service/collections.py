"""The collections one process serves: `default`, the index of RAG_INDEX_DIR that the routes
without a prefix have always served, and named ones, each its own index directory
`RAG_COLLECTIONS_DIR/<name>`.

Each collection has its own `Engine` (its reader, writer, group commit and merges), so the
documents of one never reach another's results; they all share the default engine's model and
query batcher (`Engine.over`), so the model is loaded once. A named collection is opened on its
first use and exists once its index has a commit: reads of one without a commit are
`CollectionNotFoundError` (a 404), and the first write (`Collections.for_write`, or
`open_collection(..., create=True)` for the CLI) creates it. What an index is, whether one
exists in a directory, and how another collection's engine is made are the default engine's
(`Engine.has_index_at`, `Engine.over`), so a sharded service (`service.sharded.engine`) keeps its
collections here too. Out of scope: deleting or renaming a collection, and closing idle ones.
"""

from __future__ import annotations

import threading
from pathlib import Path

from index.embedding import Embedder
from index.storage.store import IndexStore
from service.collection_names import DEFAULT_COLLECTION, checked_collection_name
from service.config import Settings
from service.engine import Engine, embedder_for


class CollectionNotFoundError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"no collection named {name!r}: a collection is created by its first write "
            f"(POST /collections/{name}/documents, or `rag build --collection {name} PATHS`)"
        )
        self.name = name


def collection_dir(settings: Settings, name: str) -> Path:
    """Where collection `name`'s index lives."""
    name = checked_collection_name(name)
    return settings.index_dir if name == DEFAULT_COLLECTION else settings.collections_dir / name


def open_collection(
    settings: Settings, name: str, *, create: bool, embedder: Embedder | None = None
) -> Engine:
    """An engine over collection `name` for one command (the CLI); `create` for writes, else a
    named collection without an index is `CollectionNotFoundError`."""
    store = IndexStore(collection_dir(settings, name))
    if not create and name != DEFAULT_COLLECTION and store.current_stamp() is None:
        raise CollectionNotFoundError(name)
    return Engine(settings, embedder or embedder_for(settings), store, collection=name)


class Collections:
    """The engines of a server's collections, opened on first use and kept open."""

    def __init__(self, default: Engine, settings: Settings) -> None:
        self.default, self.settings = default, settings
        self._engines: dict[str, Engine] = {DEFAULT_COLLECTION: default}
        self._opening = threading.Lock()
        self._merging = False

    def get(self, name: str) -> Engine:
        """Collection `name`'s engine; `CollectionNotFoundError` if it has no index yet. The
        default collection is always there (without an index, its searches are 503s as before)."""
        name = checked_collection_name(name)
        engine = self._engines.get(name)
        if engine is None:
            if not self.default.has_index_at(collection_dir(self.settings, name)):
                raise CollectionNotFoundError(name)
            engine = self._open(name)
        if name != DEFAULT_COLLECTION and not engine.has_index():
            raise CollectionNotFoundError(name)  # opened for a write that has not committed
        return engine

    def for_write(self, name: str) -> Engine:
        """Collection `name`'s engine, opened even without an index: its first commit creates it."""
        name = checked_collection_name(name)
        return self._engines.get(name) or self._open(name)

    def opened(self) -> dict[str, Engine]:
        """The engines opened so far, by collection name (what the metrics report on)."""
        with self._opening:
            return dict(self._engines)

    def names(self) -> list[str]:
        """Every collection with an index (`default` first), on disk or opened here."""
        named = {name for name, engine in self.opened().items() if engine.has_index()}
        root = self.settings.collections_dir
        if root.is_dir():
            named |= {
                entry.name
                for entry in root.iterdir()
                if _valid_name(entry.name) and self.default.has_index_at(entry)
            }
        named.discard(DEFAULT_COLLECTION)
        return [DEFAULT_COLLECTION, *sorted(named)]

    def _open(self, name: str) -> Engine:
        with self._opening:
            engine = self._engines.get(name)
            if engine is None:
                engine = self.default.over(collection_dir(self.settings, name), name)
                if self._merging:
                    engine.start_merging()
                self._engines[name] = engine
            return engine

    def start_merging(self) -> None:
        """Merge every collection in the background, the ones opened later too."""
        with self._opening:
            self._merging = True
            engines = list(self._engines.values())
        for engine in engines:
            engine.start_merging()

    def stop_merging(self) -> None:
        with self._opening:
            self._merging = False
            engines = list(self._engines.values())
        for engine in engines:
            engine.stop_merging()


def _valid_name(name: str) -> bool:
    try:
        checked_collection_name(name)
    except ValueError:
        return False
    return True
