"""The sharded service's document routes: writes to the owning shard's writer, reads from the
shards' query replicas.

* `write` splits a change by owning shard (`index.sharding.assignment.shard_of`, as builds
  place documents) and sends each part to that shard's `ShardWriter`, all parts at once. The
  document routes send one document, so each of their writes is one shard's commit: atomic and
  durable before it is acknowledged. A change spanning shards (several ids) is one commit per
  shard, not atomic across them (`index.sharding.writer`). A delete of an id not indexed is
  `DocumentNotFoundError` (404), the other shards' parts applied. Writes are not retried: a
  writer lost under a call may have committed, so the call fails (`ShardUnavailableError`, 503)
  and the client decides (an upsert sent again is `unchanged` if it had landed).
* The response's `index_version`, documents and chunks are those of every shard's live commit
  once the write is applied, all from the writers in the write's one round of calls: a touched
  shard's from the commit holding its part, the others' from their writers' `health` (not from
  the query replicas, which may be queued behind queries). The version names, per shard, a commit
  that holds the write or a later one. A query that starts after the response sees the write:
  each shard replica reads CURRENT on every query's first call.
* `listing` and `document_at` read every shard's (or the owning shard's) live commit; the version
  they return names the commit of each shard, as a search's does, so a citation's offsets are
  checked against the text of the version the search named.

* `optimize` (`POST /admin/optimize`) asks every shard's writer to merge its shard into one
  segment, all at once, not retried (as a write); the version names each shard's commit after it.

Out of scope: the routes (`service.routes.documents`, shared with `rag serve`), the merges
themselves (`service.sharded.writers`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from corpus import Document
from index.sharding.assignment import shard_of
from index.sharding.coordinator import VERSION_SEPARATOR
from index.write.changes import Change, Delete, Upsert
from service.engine import DocumentNotFoundError, DocumentsAt, Optimized, Written
from service.sharded.failures import ReplicaLostError, ShardUnavailableError
from service.sharded.health import ShardHealth


class ShardedDocuments:
    def __init__(
        self,
        shards: Sequence[Any],
        writers: Sequence[Any],
        fan_out: Callable[[Sequence[Callable[[], Any]]], list[Any]],
        write_fan_out: Callable[[Sequence[Callable[[], Any]]], list[Any]],
    ) -> None:
        """`shards`, `writers`: `RemoteShard`s and `RemoteWriter`s in shard order; `fan_out`
        for reads, `write_fan_out` (with its own, longer timeout: writes embed) for writes."""
        self.shards, self.writers = list(shards), list(writers)
        self.fan_out, self.write_fan_out = fan_out, write_fan_out

    def owner(self, document_id: str) -> int:
        return shard_of(document_id, len(self.shards))

    def write(self, change: Change) -> Written:
        parts = _split(change, self.owner)
        try:
            outcomes: list[Written | ShardHealth | DocumentNotFoundError] = self.write_fan_out(
                [
                    functools.partial(writer.write, parts[shard]) if shard in parts else writer.health
                    for shard, writer in enumerate(self.writers)
                ]
            )
        except ReplicaLostError as lost:
            raise ShardUnavailableError([lost.shard], "its writer was lost during the write") from lost
        for outcome in outcomes:
            if isinstance(outcome, DocumentNotFoundError):
                raise DocumentNotFoundError(outcome.document_id)
        written = [outcome for outcome in outcomes if isinstance(outcome, Written)]
        live = [outcome for outcome in outcomes if not isinstance(outcome, DocumentNotFoundError)]
        return Written(
            _joined(w.added for w in written),
            _joined(w.replaced for w in written),
            _joined(w.removed for w in written),
            _joined(w.unchanged for w in written),
            VERSION_SEPARATOR.join(shard.version for shard in live),
            sum(shard.documents for shard in live),
            sum(shard.chunks for shard in live),
        )

    def optimize(self) -> Optimized:
        """Every shard's writer merges its shard into one segment (not retried, as a write)."""
        try:
            done: list[Optimized] = self.write_fan_out([writer.optimize for writer in self.writers])
        except ReplicaLostError as lost:
            raise ShardUnavailableError([lost.shard], "its writer was lost during the merge") from lost
        return Optimized(
            VERSION_SEPARATOR.join(shard.version for shard in done),
            sum(shard.segments for shard in done),
            sum(shard.merged for shard in done),
        )

    def listing(self) -> DocumentsAt:
        found: list[DocumentsAt] = self.fan_out([shard.listing for shard in self.shards])
        documents = sorted((d for part in found for d in part.documents), key=lambda d: d.id)
        return DocumentsAt(VERSION_SEPARATOR.join(part.version for part in found), documents)

    def document_at(self, document_id: str) -> DocumentsAt:
        owner = self.owner(document_id)
        found: list[DocumentsAt | ShardHealth] = self.fan_out(
            [
                functools.partial(shard.document, document_id) if shard.shard == owner else shard.health
                for shard in self.shards
            ]
        )
        owned = found[owner]
        if not isinstance(owned, DocumentsAt) or not owned.documents:
            raise DocumentNotFoundError(document_id)
        return DocumentsAt(VERSION_SEPARATOR.join(part.version for part in found), owned.documents)


def _split(change: Change, owner: Callable[[str], int]) -> dict[int, Change]:
    """`change` as one change per owning shard, shards in order, ids in the order given."""
    if isinstance(change, Upsert):
        by_id = {document.id: document for document in change.documents}  # the last of an id repeated
        documents: dict[int, list[Document]] = {}
        for document in by_id.values():
            documents.setdefault(owner(document.id), []).append(document)
        return {shard: Upsert(tuple(part)) for shard, part in sorted(documents.items())}
    ids: dict[int, list[str]] = {}
    for document_id in dict.fromkeys(change.document_ids):
        ids.setdefault(owner(document_id), []).append(document_id)
    return {shard: Delete(tuple(part)) for shard, part in sorted(ids.items())}


def _joined(lists: Any) -> list[str]:
    return sorted(i for ids in lists for i in ids)
