"""Each shard's writer: one Ray Serve deployment per shard (`writer-<i>`, exactly one replica),
and its merges, which run in a Ray actor of each writer's own. No process that answers queries
writes or merges.

`ShardWriter` holds an ordinary `service.engine.Engine` over its shard's folder of the sharded
index (and one over its folder of each named collection's, opened by the collection's first
write here, which writes that index's manifest when it has none yet), so a shard's writes go
through the same group commit as `rag serve`'s: writes to one shard that arrive together share
one commit, each acknowledged once that commit is durable. The
query replicas of the shard (`ShardDeployment`) notice the new commit on their next call, as a
server notices a commit `rag add` made beside it (`index.sharding.shard.Shard.live`).

Merges: after each write the writer asks the shard's merge policy whether a merge is due and, if
so and none is running, has its merger run `merge_shard`: a Ray actor of its own (`ShardMerger`,
`MERGE_CPUS` logical CPUs: none) on the writer's node (a segment being staged is claimed by its
process id, which only that machine can check), started on the first merge and kept, so a merge
does not start a process: a new Ray worker took ~2 s of CPU to start and import the index code,
which under steady writes was a quarter of a core taken from the queries. The merger is owned by
the writer and ends with it; one that died is started again on the next merge. `merge_shard`
merges what the policy asks for, then commits under the store's file lock like any writer;
writes committed meanwhile are carried over (`IndexWriter.merge`). When it ends, the writer asks
the policy again. A merge that fails is logged and leaves the shard as it was. A writer whose
commits reach the policy's ceiling while its merger runs merges in its own process first
(back-pressure, `IndexWriter.apply`), so segments stay bounded even when the merger cannot keep
up.

A write goes to one shard (the ingress splits by owner, `service.sharded.documents`);
`optimize` (`POST /admin/optimize`) merges the shard into one segment in the writer's own process,
every shard's writer at once. Snapshots: the writer keeps, lists, checks and restores its shard's
(`service.sharded.snapshots` makes them one snapshot of the sharded index); a refusal is returned
as a `SnapshotRefusal`, not raised. Out of scope: the split itself, builds (`rag build --shards N`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from index.errors import DamagedSnapshotError, NoIntactCommitError
from index.sharding.layout import ShardedLayout
from index.sharding.shard import EMPTY_VERSION
from index.storage.store import IndexStore
from index.write.changes import Change
from index.write.restoring import Loss
from index.write.writer import IndexWriter
from service.collection_names import DEFAULT_COLLECTION
from service.collections import collection_dir
from service.config import Settings
from service.engine import (
    CommitSummary,
    DocumentNotFoundError,
    Engine,
    Optimized,
    Recovered,
    Restored,
    Written,
    embedder_for,
)
from service.sharded.health import ShardHealth
from service.sharded.snapshots import RefusalKind, SnapshotRefusal

logger = logging.getLogger("rag.sharded.writers")
# No logical CPU: the merger is pinned to the writer's node, whose CPUs the replicas may have
# reserved to the last quarter; a merger that waited for one would never start.
MERGE_CPUS = 0


def merge_shard(settings: Settings, store_root: str) -> int:
    """Run the merges the merge policy asks for in the shard index at `store_root` until it asks
    for none; the number of merges committed. The embedder only names the model (merges copy
    vectors, never embed), so the model is not loaded."""
    writer = IndexWriter(
        IndexStore(store_root),
        embedder_for(settings),
        settings=settings.index_settings(),
        merge_policy=settings.merge_policy(),
    )
    return len(writer.merge().results)


class ShardMerger:
    """The process one writer's merges run in (`merge_shard`), one merge at a time."""

    def merge(self, settings: Settings, store_root: str) -> int:
        return merge_shard(settings, store_root)


class ShardWriter:
    def __init__(self, settings: Settings, shard: int, shard_count: int) -> None:
        self.settings, self.shard, self.shard_count = settings, shard, shard_count
        store = ShardedLayout.open(settings.index_dir, shard_count).store(shard)
        self.engines = {DEFAULT_COLLECTION: Engine(settings, embedder_for(settings), store)}
        self.merge_policy = settings.merge_policy()
        self._merging: dict[str, asyncio.Task[None]] = {}
        self._merger: Any = None  # the `ShardMerger` actor's handle, once a merge started it
        self.merges = 0  # committed by this writer's merger

    def _started_merger(self) -> Any:
        """The `ShardMerger` on this writer's node: a segment being staged is claimed by its
        process id (`index.storage.segments.stage_segment`), which the writer's clean-up can check only on its own
        machine."""
        if self._merger is None:
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            placement: dict[str, Any] = {"num_cpus": MERGE_CPUS, "scheduling_strategy": here}
            self._merger = ray.remote(**placement)(ShardMerger).remote()
        return self._merger

    async def write(self, collection: str, change: Change) -> Written | DocumentNotFoundError:
        """Apply `change` (all of whose ids this shard owns) to `collection`, whose sharded index
        the first write creates. A delete of an id the shard does not hold changes nothing and is
        returned, not raised: the ingress raises it (Ray would wrap an exception)."""
        engine = self._engine(collection)
        try:
            written = await asyncio.to_thread(engine.write, change)
        except DocumentNotFoundError as missing:
            return missing
        self._merge_if_due(collection, engine)
        return written

    async def health(self, collection: str) -> ShardHealth:
        """This shard's live commit of `collection`, read where no query waits: what a write's
        response names for the shards the write did not touch (`service.sharded.documents`)."""
        engine = self._engine(collection)
        if engine.store.current() is None:
            return ShardHealth.of(self.shard, None, self.merge_policy)
        reader = await asyncio.to_thread(lambda: engine.retriever.reader)
        return ShardHealth.of(self.shard, reader, self.merge_policy)

    async def optimize(self, collection: str) -> Optimized:
        """Merge the shard of `collection` into one segment in this process (`Engine.optimize`), in
        its turn among the shard's writes; a shard nothing was written to yet has nothing to merge."""
        engine = self._engine(collection)
        if engine.store.current() is None:
            return Optimized(EMPTY_VERSION, 0, 0)
        return await asyncio.to_thread(engine.optimize)

    async def snapshot(self, collection: str, name: str) -> CommitSummary | SnapshotRefusal:
        """Keep this shard's live commit of `collection` as snapshot `name`; a shard nothing was
        written to is first given an empty commit, which the snapshot keeps (restoring it empties
        the shard again)."""
        engine = self._engine(collection)
        try:
            if engine.store.current() is None:
                await asyncio.to_thread(engine.ensure_commit)
            return await asyncio.to_thread(engine.snapshot, name)
        except FileExistsError as error:
            return SnapshotRefusal(self.shard, RefusalKind.EXISTS, str(error))

    def snapshots(self, collection: str) -> tuple[list[tuple[str, CommitSummary]], list[tuple[str, str]]]:
        """This shard's snapshots of `collection`, intact and damaged (`Engine.snapshots`)."""
        return self._engine(collection).snapshots()

    async def verify_snapshot(self, collection: str, name: str) -> CommitSummary | SnapshotRefusal:
        """What snapshot `name` of this shard keeps, once every file of it passes its checks."""
        store = self._engine(collection).store
        try:
            return CommitSummary.of(await asyncio.to_thread(store.verified_snapshot, name))
        except (FileNotFoundError, DamagedSnapshotError) as error:
            return SnapshotRefusal.of(self.shard, error)

    async def restore(self, collection: str, name: str) -> Restored | SnapshotRefusal:
        """Make snapshot `name` of this shard live again, in its turn among the shard's writes."""
        engine = self._engine(collection)
        try:
            return await asyncio.to_thread(engine.restore, name)
        except (FileNotFoundError, DamagedSnapshotError) as error:
            return SnapshotRefusal.of(self.shard, error)

    async def recover(self, collection: str) -> Recovered | SnapshotRefusal:
        """Go back to the newest intact commit point of this shard of `collection` if its live one
        is damaged (`Engine.recover`), in its turn among the shard's writes; a shard nothing was
        ever committed to has nothing to recover."""
        engine = self._engine(collection)
        if engine.store.current_stamp() is None and not any(engine.store.commits_dir.glob("*.json")):
            return Recovered(EMPTY_VERSION, "", None, Loss())
        try:
            return await asyncio.to_thread(engine.recover_and_report)
        except NoIntactCommitError as error:
            return SnapshotRefusal(self.shard, RefusalKind.NO_INTACT_COMMIT, error.problem)

    def merges_committed(self) -> int:
        return self.merges

    def _engine(self, collection: str) -> Engine:
        """The engine of this shard of `collection`, its sharded index's manifest written when
        the collection has none yet (a shard count that does not match raises first)."""
        engine = self.engines.get(collection)
        if engine is None:
            layout = ShardedLayout.open_or_create(collection_dir(self.settings, collection), self.shard_count)
            engine = self.engines[DEFAULT_COLLECTION].over(layout.store(self.shard).root, collection)
            engine = self.engines.setdefault(collection, engine)
        return engine

    def _merge_if_due(self, collection: str, engine: Engine) -> None:
        merging = self._merging.get(collection)
        if merging is None or merging.done():
            self._merging[collection] = asyncio.create_task(self._merge_while_due(engine))

    async def _merge_while_due(self, engine: Engine) -> None:
        while self._merge_due(engine):
            try:
                merged: int = await self._started_merger().merge.remote(self.settings, str(engine.store.root))
            except ray.exceptions.RayError as error:  # the merge's own errors arrive wrapped in it
                if isinstance(error, ray.exceptions.RayActorError):
                    self._merger = None  # the merger died: the next merge starts another
                logger.warning(
                    "shard %d of %s: merge failed; the shard stays as it was: %s",
                    self.shard,
                    engine.collection,
                    error,
                )
                return
            self.merges += merged
            if not merged:
                return

    def _merge_due(self, engine: Engine) -> bool:
        commit = engine.store.current()
        return commit is not None and bool(self.merge_policy.find_merges(commit.segments))
