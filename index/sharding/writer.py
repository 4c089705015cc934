"""Writes to a sharded index: each change goes to the shard that owns its document.

`ShardedWriter` splits upserts, deletes and builds (`sync`) by `shard_of(id, shard_count)` and
applies each part with that shard's own `IndexWriter`, shard after shard in shard order. Each
shard's commit is atomic and durable before the writer moves on (the store's commit protocol,
`index.storage.store`); a shard with nothing to change is not touched, except by `sync`, which
gives every shard its part of the files (possibly none) so that each removes what left it.

Not atomic across shards: a write spanning shards is a sequence of per-shard commits. A query
running meanwhile sees each shard as of its first call to it (`index.sharding.coordinator`), so
it may see the write on the shards already committed and not on the others; its `index_version`
(one commit version per shard) says which. A write that fails on a shard leaves the shards
before it committed and the ones after it unchanged; `ShardedWriteResult` lists what each shard
did. A delete first checks that every id is in its shard (MissingDocumentsError, nothing
changed, otherwise); a concurrent writer removing one of them in between makes that shard's
delete fail after earlier shards committed theirs.

Out of scope: placing documents (`index.sharding.assignment`), the folder (`index.sharding.layout`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corpus import Document
from index.embedding import Embedder
from index.errors import IndexNotFoundError
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.sharding.assignment import shard_of
from index.sharding.layout import ShardedLayout
from index.write.changes import MissingDocumentsError, WriteResult
from index.write.writer import IndexWriter

ShardCommitted = Callable[[int, IndexReader], None]  # (shard, the reader on its new commit)


@dataclass(frozen=True)
class ShardedWriteResult:
    results: dict[int, WriteResult] = field(default_factory=dict)  # by shard: the shards written to

    @property
    def changed(self) -> bool:
        return any(result.changed for result in self.results.values())

    def _all(self, name: str) -> list[str]:
        return sorted(i for result in self.results.values() for i in getattr(result, name))

    @property
    def added(self) -> list[str]:
        return self._all("added")

    @property
    def replaced(self) -> list[str]:
        return self._all("replaced")

    @property
    def removed(self) -> list[str]:
        return self._all("removed")

    @property
    def unchanged(self) -> list[str]:
        return self._all("unchanged")


class ShardedWriter:
    def __init__(
        self,
        layout: ShardedLayout,
        embedder: Embedder,
        *,
        settings: IndexSettings,
        on_shard_commit: ShardCommitted | None = None,
        **writer_options: Any,
    ) -> None:
        """`on_shard_commit` is told each shard's commit as it happens (while that shard's write
        lock is held); `writer_options` go to every shard's `IndexWriter`."""
        self.layout = layout
        self.writers = [
            IndexWriter(
                store,
                embedder,
                settings=settings,
                on_commit=None if on_shard_commit is None else functools.partial(on_shard_commit, shard),
                **writer_options,
            )
            for shard, store in enumerate(layout.stores())
        ]

    def owner(self, document_id: str) -> int:
        return shard_of(document_id, self.layout.shard_count)

    def by_shard(self, document_ids: Sequence[str]) -> dict[int, list[str]]:
        """`document_ids` grouped by owning shard, shards in order, ids in the order given."""
        groups: dict[int, list[str]] = {}
        for document_id in document_ids:
            groups.setdefault(self.owner(document_id), []).append(document_id)
        return dict(sorted(groups.items()))

    def upsert(self, documents: Sequence[Document]) -> ShardedWriteResult:
        """Add or replace `documents`, each in its shard."""
        by_id = {document.id: document for document in documents}  # the last of an id repeated
        return ShardedWriteResult(
            {
                shard: self.writers[shard].upsert([by_id[i] for i in ids])
                for shard, ids in self.by_shard(list(by_id)).items()
            }
        )

    def delete(self, document_ids: Sequence[str]) -> ShardedWriteResult:
        """Remove `document_ids`; MissingDocumentsError, with nothing changed, if one is not indexed."""
        groups = self.by_shard(list(dict.fromkeys(document_ids)))
        missing = [i for shard, ids in groups.items() for i in ids if not self._holds(shard, i)]
        if missing:
            raise MissingDocumentsError(missing)
        return ShardedWriteResult({shard: self.writers[shard].delete(ids) for shard, ids in groups.items()})

    def sync(
        self, documents: Sequence[Document], *, exact: bool = False, force: bool = False
    ) -> ShardedWriteResult:
        """`rag build` on every shard, each with the files' documents it owns."""
        parts: list[list[Document]] = [[] for _ in self.writers]
        for document in documents:
            parts[self.owner(document.id)].append(document)
        return ShardedWriteResult(
            {
                shard: writer.sync(part, exact=exact, force=force)
                for shard, (writer, part) in enumerate(zip(self.writers, parts, strict=True))
                # A shard that has no index and gets no documents stays without one.
                if part or writer.store.current_pointer() is not None
            }
        )

    def _holds(self, shard: int, document_id: str) -> bool:
        try:
            reader = IndexReader.open(self.layout.store(shard))
        except IndexNotFoundError:
            return False
        return reader.document(document_id) is not None
