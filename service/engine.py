"""The engine the routes and the CLI share: one embedder, the live index, its writer and merges.

The live `Retriever` (over one commit's `IndexReader`) is replaced as a whole after each commit,
so a query that started on one commit finishes on it. Every commit this process makes takes its
turn in one group commit (`index.write.group_commit`): writes that arrive while a commit is being made
go into the next one together, each acknowledged with its own result once that commit is
durable and installed; a merge's commit, a build or a restore takes its turn among them, so
merges never starve behind writers. Across processes the store's file lock serialises commits.
When the live commit holds as many segments as the merge policy's ceiling, the writer whose turn
it is merges first (back-pressure, `IndexWriter.apply`).

A commit made elsewhere (`rag add` beside a running server) is noticed on the next request:
CURRENT no longer names the live commit, and the first request that finds no commit in progress
loads it (re-using every segment it already has open); the others keep answering from the old
commit meanwhile. Installs never go backwards: a reader older than the live one is never
installed. Merges run on a background thread (`start_merging`), woken after each write: they
pick and build without any lock and queue only their commit, so queries never wait for them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from corpus import Document
from index.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder, Vectors
from index.errors import DamagedSnapshotError, IndexError_, IndexMismatchError
from index.onnx_embedding import OnnxQuestionEncoder
from index.search.context import widen_outcome
from index.search.document_ranking import DocumentSearchOutcome, search_documents
from index.search.filters import Filter
from index.search.modes import Mode
from index.search.reader import IndexReader
from index.search.retrieval import Retriever, SearchOutcome
from index.search.stages import ENCODE, stage
from index.storage.commits import CommitPoint
from index.storage.store import IndexStore
from index.write.changes import Change, Delete, MissingDocumentsError, Upsert, WriteResult
from index.write.group_commit import GroupCommit
from index.write.restoring import Loss, Recovery
from index.write.writer import IndexWriter, MergeOutcome
from service.batching import MicroBatcher
from service.collection_names import DEFAULT_COLLECTION
from service.config import EmbedderKind, QuestionRuntime, Settings
from service.observability import metrics
from service.storage import remove_leftovers

logger = logging.getLogger("rag.engine")
CURRENT_RECHECK_SECONDS = 1.0
# Searches of an index this small run on the event loop's thread (`Engine.search_async`): the
# size below which a segment is searched exactly (`VectorIndexSettings.approximate_threshold`).
INLINE_SEARCH_CHUNKS = 100_000  # the longest a search trusts CURRENT's unchanged stamp
# What takes a turn in the group commit: a write, or a job that commits alone (a merge's commit,
# a build, a restore), returning its own result.
EngineChange = Change | Callable[[], Any]
Searched = TypeVar("Searched")  # what a search over one commit returns


class DocumentNotFoundError(LookupError):
    def __init__(self, document_id: str) -> None:
        super().__init__(f"no document with id {document_id!r}")
        self.document_id = document_id


@dataclass(frozen=True)
class IndexHealth:
    """What `/healthz` reports of the live index."""

    version: str
    documents: int
    chunks: int
    segments: int
    segment_ceiling: int  # the segment count at which writers wait for merges


@dataclass(frozen=True)
class Written:
    """A write through the service (`Engine.write`): what it did to which ids, and the live
    index once it was applied (its version, documents and chunks)."""

    added: list[str]
    replaced: list[str]
    removed: list[str]
    unchanged: list[str]
    version: str
    documents: int
    chunks: int

    @classmethod
    def of(cls, result: WriteResult) -> Written:
        reader = result.reader
        return cls(
            result.added,
            result.replaced,
            result.removed,
            result.unchanged,
            reader.version,
            reader.document_count,
            reader.chunk_count,
        )


@dataclass(frozen=True)
class Optimized:
    """A forced merge (`Engine.optimize`): the live index after it, its segments, and how many
    segments the merge took in (0: there was nothing to merge)."""

    version: str
    segments: int
    merged: int


@dataclass(frozen=True)
class CommitSummary:
    """A commit as the admin routes and the CLI report it: the one a snapshot keeps, or the live
    one a restore made. Over shards (`service.sharded.snapshots`): the shards' commits, their
    versions joined by "," in shard order, documents summed, the latest creation time."""

    version: str
    documents: int
    created_at: str

    @classmethod
    def of(cls, commit: CommitPoint) -> CommitSummary:
        return cls(commit.version, commit.documents, commit.created_at)


@dataclass(frozen=True)
class Restored:
    """A restore (`Engine.restore`): what the snapshot keeps, and the live commit it became."""

    kept: CommitSummary
    live: CommitSummary


@dataclass(frozen=True)
class Recovered:
    """A recovery (`Engine.recover_and_report`) as `POST /admin/recover` reports it: the live
    version after it, the commit point it comes from (relative to the collection's directory),
    what was wrong (None: intact, nothing changed) and what going back lost. Over shards
    (`service.sharded.snapshots`): every shard's, sources and segments prefixed by its folder."""

    version: str
    source: str
    damage: str | None
    loss: Loss


@dataclass(frozen=True)
class DocumentsAt:
    """Documents as one live index holds them, and that index's version."""

    version: str
    documents: list[Document]


@dataclass
class Engine:
    settings: Settings
    embedder: Embedder
    store: IndexStore

    # Given by `over`: the engines of one process's collections encode questions in one batcher.
    query_batcher: MicroBatcher | None = None
    collection: str = DEFAULT_COLLECTION  # its name in metrics (service/collections.py names them)

    def __post_init__(self) -> None:
        self._retriever: Retriever | None = None
        self._swap = threading.Lock()
        self._write = threading.Lock()  # writes and reloads; readers never wait for it
        self.question_encoder = question_encoder_for(self.settings, self.embedder)
        self._query_batcher = self.query_batcher or MicroBatcher(
            self.question_encoder.embed_batch,
            max_batch=self.settings.query_batch_size,
            max_wait_seconds=self.settings.query_batch_wait_ms / 1000,
            on_batch=metrics.batch_encoded if self.settings.metrics else None,
        )
        # Every commit this process makes takes its turn here: writes arriving together share one.
        self._commits: GroupCommit[EngineChange, Any] = GroupCommit(self._commit_group)
        self._merge_wanted = threading.Event()
        self._merging: threading.Thread | None = None
        self._stopping = threading.Event()
        # CURRENT as last read for a search: its stamp and when (`_committed_elsewhere`).
        self._seen_current: tuple[tuple[int, int, int] | None, float] = (None, -math.inf)

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None) -> Engine:
        return cls(
            settings=settings,
            embedder=embedder or embedder_for(settings),
            store=IndexStore(settings.index_dir),
        )

    def over(self, root: Path, collection: str) -> Engine:
        """An engine over the index in `root` (collection `collection`'s) sharing this one's model
        and its query batcher: the model is loaded once per process, whatever the number of
        collections. What failed writes left in `root` is removed first, as at start-up."""
        store = IndexStore(root)
        remove_leftovers(store)
        return Engine(
            self.settings, self.embedder, store, query_batcher=self._query_batcher, collection=collection
        )

    def has_index_at(self, root: Path) -> bool:
        """Whether `root` holds an index of the kind this engine serves with a commit (a stat of
        CURRENT: creates nothing)."""
        return IndexStore(root).current_stamp() is not None

    def has_index(self) -> bool:
        """Whether this engine's index exists (has a commit)."""
        return self._retriever is not None or self.has_index_at(self.store.root)

    def writer(self, show_progress: bool = False) -> IndexWriter:
        """A writer whose every commit is installed as the live index before its lock is released."""
        return IndexWriter(
            self.store,
            self.embedder,
            settings=self.settings.index_settings(),
            merge_policy=self.settings.merge_policy(),
            show_progress=show_progress,
            on_commit=self._install,
        )

    # --- reading -------------------------------------------------------------------------

    def load(self) -> None:
        """Load the live index now (a server fails at start-up, not on its first query) and
        remove what writes that failed before a restart left behind."""
        _ = self.retriever
        remove_leftovers(self.store)

    def health(self) -> IndexHealth:
        retriever = self.retriever
        reader = retriever.reader
        return IndexHealth(
            retriever.version,
            reader.document_count,
            reader.chunk_count,
            len(reader.segments),
            self.segment_ceiling(reader),
        )

    @property
    def retriever(self) -> Retriever:
        current = self._retriever
        if current is None:
            with self._write:
                if self._retriever is None:
                    self._install(self._open_reader())
            current = self._retriever
        elif self._committed_elsewhere(current):
            current = self._reload_committed_elsewhere(current)
        if current is None:  # pragma: no cover - _install always sets it
            raise RuntimeError("index not loaded")
        return current

    def _open_reader(self) -> IndexReader:
        reader = IndexReader.open(self.store, self.live_reader())
        if reader.commit.segments and (
            reader.model_name != self.embedder.model_name or reader.dimension != self.embedder.dimension
        ):
            raise IndexMismatchError(
                f"index in {self.store.root} was built with model {reader.model_name!r} "
                f"({reader.dimension} dims) but {self.embedder.model_name!r} ({self.embedder.dimension} dims) "
                "is configured: rebuild with `rag build` or configure the index's model"
            )
        return reader

    def _committed_elsewhere(self, current: Retriever) -> bool:
        """Whether CURRENT names a commit other than `current`'s (another process committed).
        Every search stats CURRENT; it is read only when its stamp changed, or once
        `CURRENT_RECHECK_SECONDS` passed since the last read (see `IndexStore.current_stamp`)."""
        stamp, now = self.store.current_stamp(), time.monotonic()
        seen, read_at = self._seen_current
        if stamp is not None and stamp == seen and now - read_at < CURRENT_RECHECK_SECONDS:
            return False
        # The stamp is taken before the read: if CURRENT moves in between, the next search sees
        # a stamp that differs from the one kept and reads again.
        if self.store.current_name() not in (None, current.reader.commit.file_name):
            return True  # not remembered: until a reload succeeds, every search looks again
        self._seen_current = (stamp, now)
        return False

    def _reload_committed_elsewhere(self, current: Retriever) -> Retriever:
        # Non-blocking: while a write runs here it will install its own commit; meanwhile (and
        # while another request reloads) the old commit keeps answering.
        if not self._write.acquire(blocking=False):
            return current
        try:
            if self.store.current_name() not in (None, self._live_commit_name()):
                self._install(self._open_reader())
        except IndexError_ as error:
            logger.warning("keeping index %s: cannot load the new commit: %s", current.version, error)
        finally:
            self._write.release()
        return self._retriever or current

    def _live_commit_name(self) -> str | None:
        retriever = self._retriever
        return None if retriever is None else retriever.reader.commit.file_name

    def _install(self, reader: IndexReader) -> None:
        retriever = Retriever(reader, self.embedder, self.settings.retrieval_options())
        with self._swap:
            live = self._retriever
            if live is None or reader.commit.generation >= live.reader.commit.generation:
                self._retriever = retriever

    def live_reader(self) -> IndexReader | None:
        with self._swap:
            return None if self._retriever is None else self._retriever.reader

    def live_version(self) -> str | None:
        """The live commit's version; None before the index has one."""
        reader = self.live_reader()
        return None if reader is None else reader.version

    def search(
        self,
        query: str,
        k: int,
        mode: Mode,
        context: int = 0,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> SearchOutcome:
        """`context` > 0 widens each passage by that many neighbouring chunks (index/search/context.py);
        `filter`: only passages of the documents it matches (index/search/filters.py); `as_of`: also
        within the time range the question states, read as of that date (index/search/question_dates.py)."""
        # Encoded through the batcher so concurrent requests share one model call.
        with stage(ENCODE):
            vector = self._query_batcher.embed(query)
        return _answer(self.retriever, vector, query, k, mode, context, filter, as_of)

    async def search_async(
        self,
        query: str,
        k: int,
        mode: Mode,
        context: int = 0,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> SearchOutcome:
        """`search` for request handlers: the question waits for its batch on the event loop,
        then is searched (`_searching`)."""
        with stage(ENCODE):
            vector = await self._query_batcher.embed_async(query)
        return await self._searching(
            lambda retriever: _answer(retriever, vector, query, k, mode, context, filter, as_of)
        )

    async def search_documents_async(
        self,
        query: str,
        k: int,
        feedback: bool,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> DocumentSearchOutcome:
        """Documents ranked by document-level fusion (index/search/document_ranking.py), each cited by its
        closest passage; with `feedback`, after one round of Rocchio feedback; `filter` and `as_of`
        as for `search`."""
        with stage(ENCODE):
            vector = await self._query_batcher.embed_async(query)
        return await self._searching(
            lambda retriever: search_documents(retriever, query, vector, k, feedback, filter, as_of)
        )

    async def _searching(self, search: Callable[[Retriever], Searched]) -> Searched:
        """`search` over the live commit. Over an index of at most `INLINE_SEARCH_CHUNKS` chunks
        it runs on the event loop's thread itself (a few ms of numpy and Python holding the GIL):
        measured (docs/performance.md), handing it to a worker thread cost more than it ran, a
        third of c=32 throughput. A larger index is searched on a worker thread, where FAISS and
        numpy, which release the GIL, overlap with other requests; so is a search that must
        first load a commit another process made. No search starts before its vector is known:
        running BM25 for the text while the model encoded made every query cost more CPU."""
        live = self._retriever
        if (
            live is not None
            and live.reader.chunk_count <= INLINE_SEARCH_CHUNKS
            and not self._committed_elsewhere(live)
        ):
            return search(live)
        return await run_in_threadpool(lambda: search(self.retriever))

    def documents(self) -> list[Document]:
        return self.listing().documents

    def document(self, document_id: str) -> Document:
        return self.document_at(document_id).documents[0]

    def listing(self) -> DocumentsAt:
        """Every document of one live commit, sorted by id, with that commit's version."""
        retriever = self.retriever
        return DocumentsAt(retriever.version, sorted(retriever.reader.documents(), key=lambda d: d.id))

    def document_at(self, document_id: str) -> DocumentsAt:
        """The document `document_id` (DocumentNotFoundError if it is not indexed) with the version
        of the commit its text comes from: the one its citations' offsets index into."""
        retriever = self.retriever
        document = retriever.reader.document(document_id)
        if document is None:
            raise DocumentNotFoundError(document_id)
        return DocumentsAt(retriever.version, [document])

    # --- writing -------------------------------------------------------------------------

    def sync(
        self,
        documents: Sequence[Document],
        *,
        exact: bool = False,
        force: bool = False,
        show_progress: bool = False,
    ) -> WriteResult:
        """`rag build`: apply the files' changes since the last build (index/write/writer.py)."""
        writer = self.writer(show_progress)
        result: WriteResult = self._commits.submit(lambda: writer.sync(documents, exact=exact, force=force))
        self._merge_wanted.set()
        return result

    def upsert(self, documents: Sequence[Document]) -> WriteResult:
        """Add or replace documents; durable on disk and live when this returns."""
        began = time.perf_counter()
        result: WriteResult = self._commits.submit(Upsert(tuple(documents)))
        self._merge_wanted.set()
        changed = len(result.added) + len(result.replaced)
        metrics.write_applied(self.collection, "upsert", changed, time.perf_counter() - began)
        return result

    def remove(self, document_ids: Sequence[str]) -> WriteResult:
        """Remove documents; DocumentNotFoundError (nothing changed) if one is not indexed."""
        began = time.perf_counter()
        try:
            result: WriteResult = self._commits.submit(Delete(tuple(document_ids)))
        except MissingDocumentsError as error:
            raise DocumentNotFoundError(error.document_ids[0]) from error
        self._merge_wanted.set()
        metrics.write_applied(self.collection, "delete", len(result.removed), time.perf_counter() - began)
        return result

    def write(self, change: Change) -> Written:
        """The document routes' write: `upsert` or `remove`, durable and live when it returns."""
        if isinstance(change, Upsert):
            return Written.of(self.upsert(change.documents))
        return Written.of(self.remove(change.document_ids))

    def merge(self, force: bool = False) -> MergeOutcome:
        """Run the merges the policy asks for now (with `force`, everything into one segment).
        Each merge commits in its turn among the writes; the outcome names the commit holding
        the last merge (or the live one, when there was nothing to merge)."""
        began = time.perf_counter()
        outcome = self.writer().merge(force=force, live=self.live_reader(), turn=self._commits.submit)
        if outcome.reader is not None:
            self._install(outcome.reader)
        if outcome.results:
            merged_bytes = sum(
                metrics.tree_bytes(self.store.segments_dir / result.segment) for result in outcome.results
            )
            metrics.merges_committed(
                self.collection, len(outcome.results), merged_bytes, time.perf_counter() - began
            )
        return outcome

    def optimize(self) -> Optimized:
        """Merge every segment into one (`merge` with force), dropping deleted documents."""
        outcome = self.merge(True)
        reader = outcome.reader or self.retriever.reader  # the commit holding the merge
        return Optimized(reader.version, len(reader.segments), sum(len(r.merged) for r in outcome.results))

    def segment_ceiling(self, reader: IndexReader) -> int:
        """The segment count at which writers wait for merges (back-pressure)."""
        return self.settings.merge_policy().ceiling(reader.commit.segments)

    def snapshot(self, name: str) -> CommitSummary:
        """Keep the live commit as snapshot `name` (FileExistsError if there is one)."""
        with self.store.write_lock():
            commit = self.store.snapshot(name)
        metrics.snapshot_event(self.collection, "create")
        return CommitSummary.of(commit)

    def ensure_commit(self) -> None:
        """Give an index with no commit yet an empty first commit, in its turn among the writes."""
        self._commits.submit(lambda: self.writer().ensure_commit())

    def snapshots(self) -> tuple[list[tuple[str, CommitSummary]], list[tuple[str, str]]]:
        """The snapshots whose commit point reads back, and the names of the others with what is
        wrong with them: one damaged snapshot does not hide the rest."""
        intact: list[tuple[str, CommitSummary]] = []
        damaged: list[tuple[str, str]] = []
        for name in self.store.snapshot_names():
            try:
                intact.append((name, CommitSummary.of(self.store.snapshot_commit(name))))
            except DamagedSnapshotError as error:
                damaged.append((name, str(error)))
        return intact, damaged

    def restore(self, name: str) -> Restored:
        """Make snapshot `name` live again (FileNotFoundError if there is none;
        DamagedSnapshotError, nothing changed, if it is damaged); it takes its turn among the
        writes."""
        kept = self.store.snapshot_commit(name)
        reader: IndexReader = self._commits.submit(lambda: self.writer().restore(name))
        metrics.snapshot_event(self.collection, "restore")
        return Restored(CommitSummary.of(kept), CommitSummary.of(reader.commit))

    def recover(self) -> Recovery:
        """Go back to the newest intact commit point if the live one is damaged (index/write/restoring.py)."""
        recovery: Recovery = self._commits.submit(lambda: self.writer().recover())
        self._install(recovery.reader)
        return recovery

    def recover_and_report(self) -> Recovered:
        """`recover`, reported as the admin route answers it."""
        recovery = self.recover()
        plan = recovery.plan
        return Recovered(
            recovery.reader.version, str(plan.source.relative_to(self.store.root)), plan.damage, plan.loss
        )

    def _commit_group(self, changes: Sequence[EngineChange]) -> list[object]:
        """One turn of the group commit (`index.write.group_commit`): consecutive writes go into one
        commit (`IndexWriter.apply`); jobs (a merge's commit, a build, a restore) run alone, in
        their place. Each change gets its own outcome; a failed commit fails only its changes."""
        outcomes: list[object] = []
        writes: list[Change] = []

        def commit_writes() -> None:
            if not writes:
                return
            try:
                outcomes.extend(self.writer().apply(writes, live=self.live_reader()))
            except Exception as error:  # noqa: BLE001 - handed to each writer of the group, who raises it
                outcomes.extend([error] * len(writes))
            writes.clear()

        with self._write:
            for change in changes:
                if isinstance(change, Upsert | Delete):
                    writes.append(change)
                    continue
                commit_writes()
                try:
                    outcomes.append(change())
                except Exception as error:  # noqa: BLE001 - handed to the job's caller, who raises it
                    outcomes.append(error)
            commit_writes()
        return outcomes

    # --- background merges ---------------------------------------------------------------

    def start_merging(self) -> None:
        """Merge in the background from now on: after each write here, and once at start."""
        if self._merging is None:
            self._stopping.clear()
            self._merge_wanted.set()
            self._merging = threading.Thread(target=self._merge_loop, name="segment-merges", daemon=True)
            self._merging.start()

    def stop_merging(self, timeout: float = 30.0) -> None:
        """Stop the merge thread after the merge it is in (whose commit is atomic either way)."""
        if self._merging is not None:
            self._stopping.set()
            self._merge_wanted.set()
            self._merging.join(timeout)
            self._merging = None

    def _merge_loop(self) -> None:
        while not self._stopping.is_set():
            self._merge_wanted.wait()
            self._merge_wanted.clear()
            if self._stopping.is_set():
                return
            try:
                self.merge()
            except (IndexError_, OSError) as error:
                logger.warning("merge failed; the index stays as it was: %s", error)


def _answer(
    retriever: Retriever,
    vector: Vectors,
    query: str,
    k: int,
    mode: Mode,
    context: int,
    filter: Filter | None,
    as_of: dt.date | None,
) -> SearchOutcome:
    """The search over one commit (`retriever`), its context window from the same commit."""
    outcome = retriever.search(query, k=k, mode=mode, query_vector=vector, filter=filter, as_of=as_of)
    return widen_outcome(outcome, retriever.reader, context)


def embedder_for(settings: Settings) -> Embedder:
    if settings.embedder == EmbedderKind.HASHING:
        return HashingEmbedder()
    return SentenceTransformerEmbedder(settings.model)


def question_encoder_for(settings: Settings, embedder: Embedder) -> Embedder:
    """What encodes questions: `embedder`'s ONNX copy (index/onnx_embedding.py) unless the settings
    say `torch` or the embedder is not a real model; made on first use."""
    if settings.question_runtime == QuestionRuntime.ONNX and isinstance(
        embedder, SentenceTransformerEmbedder
    ):
        return OnnxQuestionEncoder(embedder, settings.model_cache_dir)
    return embedder
