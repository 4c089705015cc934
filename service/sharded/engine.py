"""`ShardedEngine`: the `Engine` the routes call when the index is sharded and its shards are Ray
Serve deployments (`service.sharded.deployments`).

In scope: passage search (`search`, `search_async`: `/search` GET and POST, the LLM formats, the
MCP `search` tool), document search (`search_documents_async`: `POST /search/documents`) and
`health` (`/healthz`), through `index.sharding.coordinator.ShardedSearcher`
with a `RemoteFanOut`: every shard's call is issued (`handle.method.remote(...)`) before any is
waited for. The question's vector comes from the encoder deployment, which batches questions.
A search therefore returns what the single-process service returns over one index of the same
documents (`index.sharding.coordinator`), its `index_version` being the shards' versions joined
by ",". A shard replica asked for a commit it no longer keeps (`ShardVersionGoneError`: a write
landed between a query's calls, or the calls went to different replicas and the second could not
open it) makes the search start again, up to `SEARCH_ATTEMPTS` times.

Failure (`service.sharded.failures`): a shard call whose replica died under it (`ReplicaLostError`)
makes the search start again too, within the same `SEARCH_ATTEMPTS`, after a short pause
(`LOST_REPLICA_PAUSE_SECONDS` times the attempt) in which Serve's router drops the dead replica.
A shard that no replica answers within `RAG_SHARD_TIMEOUT_SECONDS` for a step (all its calls in
that step), that Serve reports unavailable, or whose replicas are lost on every attempt is
`ShardUnavailableError` (HTTP 503 `shard_unavailable`, naming the shards): never fewer results.

The document routes (`write`, `listing`, `document_at`) go through `service.sharded.documents`:
writes to the owning shard's writer deployment, reads from the shards' query replicas.

`optimize` (`POST /admin/optimize`) has every shard's writer merge its shard into one segment;
snapshots (`/admin/snapshots`, creating, listing and restoring) are every shard's snapshot of the
same name, and `/admin/recover` every shard's recovery, through the writers
(`service.sharded.snapshots`).

Collections: an engine serves one collection (`collection`); `over` gives another collection's
engine over the same deployments, whose every call names its collection, since each shard
deployment and writer serves its shard of every collection (`collection_dir`: a sharded index of
the same shard count per collection, created by its first write). Whether a collection exists is
read from the shared storage (`has_index_at`: a commit in some shard), as the single process
reads it from its disk.
Answered `NotSupportedInClusterModeError` (HTTP 501 `not_supported_in_cluster_mode`): what
reaches the index other than through the routes (`retriever`, `sync`, `merge`, ...). This module
imports no Ray (Ray's exception classes come from `failures.ray_failure_kinds` when an engine is
made): handles are used only through their `.remote(...)` calls, sent over gRPC
(`over_grpc`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from index.embedding import Vectors
from index.errors import IndexError_, IndexMismatchError, IndexNotFoundError
from index.search.document_ranking import DocumentSearchOutcome
from index.search.filters import Filter
from index.search.modes import Mode
from index.search.retrieval import Retriever, SearchOutcome
from index.search.stages import ENCODE, stage
from index.sharding.coordinator import VERSION_SEPARATOR, ShardedSearcher
from index.sharding.layout import ShardedLayout
from index.sharding.messages import CandidateRequest, VectorRequest, WindowRequest
from index.sharding.shard import EMPTY_VERSION, ShardVersionGoneError
from index.storage.store import IndexStore
from index.write.changes import Change
from service.collection_names import DEFAULT_COLLECTION
from service.collections import collection_dir
from service.config import Settings
from service.engine import (
    CommitSummary,
    DocumentsAt,
    Engine,
    IndexHealth,
    Optimized,
    Recovered,
    Restored,
    Written,
)
from service.sharded.documents import ShardedDocuments
from service.sharded.failures import (
    EncoderUnavailableError,
    FailureKinds,
    ReplicaLostError,
    ShardUnavailableError,
    ray_failure_kinds,
)
from service.sharded.health import ShardHealth
from service.sharded.snapshots import ShardedSnapshots

Answer = TypeVar("Answer")
SEARCH_ATTEMPTS = 3
CALL_TIMEOUT_SECONDS = 60.0  # the encoder's calls
WRITE_TIMEOUT_SECONDS = 300.0  # a write embeds its documents, and may wait for a merge first
LOST_REPLICA_PAUSE_SECONDS = 0.25
# How long a call is still waited for once its step's time is up: a gRPC call's answer is read
# on the router's loop only when it is waited for, so one that came while an earlier shard was
# waited for needs this moment to be read, and is not named as a shard that did not answer.
SETTLE_SECONDS = 0.5
DOCS = "docs/scale.md"


class NotSupportedInClusterModeError(Exception):
    """A route the sharded service does not serve yet (HTTP 501)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not served in cluster mode yet ({DOCS}); use the single-process service")


def over_grpc(handle: Any) -> Any:
    """`handle` with its calls sent over gRPC, their arguments and answers in plain pickle.

    A handle's call path is fixed when the handle is made, from the environment of the process
    that makes it. The handles a deployment is given are made while the application is built, in
    the deploying process, which does not run with `SERVE_ENVIRONMENT`
    (`service.sharded.deployments`): left alone they send every call as a Ray actor call, whose
    answer is fetched through Ray's object machinery, at a third fewer queries/s under load
    (docs/scale.md). Plain pickle, not cloudpickle: every payload is data of this project's
    importable modules, which the C pickler handles without cloudpickle's per-object Python hook."""
    return handle.options(
        _by_reference=False, request_serialization="pickle", response_serialization="pickle"
    )


@dataclass(frozen=True)
class PendingCall:
    """A shard call issued and not yet waited for: which shard, and Serve's `DeploymentResponse`."""

    shard: int
    response: Any


class RemoteFanOut:
    """`index.sharding.coordinator.fan_out` for `RemoteShard`s: each call issues a remote call
    and returns its `PendingCall`; all are issued, then waited for, in order, within one
    `timeout_s` for the step (each at least `SETTLE_SECONDS`). Called on a worker thread (Serve
    forbids waiting on the event loop's). Every shard's call is waited for before a failure is
    raised, so the error names every shard that did not answer: `ShardUnavailableError` for
    those down or timed out (their pending calls cancelled), else `ReplicaLostError` for one
    whose replica died."""

    def __init__(self, kinds: FailureKinds, timeout_s: float) -> None:
        self.kinds, self.timeout_s = kinds, timeout_s

    def __call__(self, calls: Sequence[Callable[[], Answer]]) -> list[Answer]:
        pending: list[Any] = [call() for call in calls]
        deadline = time.monotonic() + self.timeout_s
        answers: list[Answer] = []
        down: list[int] = []
        lost: list[ReplicaLostError] = []
        for call in pending:
            remaining = max(SETTLE_SECONDS, deadline - time.monotonic())
            try:
                answers.append(call.response.result(timeout_s=remaining))
            except TimeoutError:
                call.response.cancel()
                down.append(call.shard)
            except self.kinds.shard_down:
                down.append(call.shard)
            except self.kinds.replica_lost as error:
                lost.append(ReplicaLostError(call.shard, error))
        if down:
            raise ShardUnavailableError(down, f"no replica answered within {self.timeout_s:g} s")
        if lost:
            raise lost[0]
        return answers


class _RemoteCalls:
    """Calls to one deployment's handle for one collection: `call("state", ...)` issues
    `handle.state.remote(collection, ...)` and returns its `PendingCall`, not the answer: only a
    `RemoteFanOut` may call these methods."""

    def __init__(self, shard: int, handle: Any, collection: str) -> None:
        self.shard, self.handle, self.collection = shard, handle, collection

    def call(self, method: str, *args: Any) -> PendingCall:
        return PendingCall(self.shard, getattr(self.handle, method).remote(self.collection, *args))


class RemoteShard(_RemoteCalls):
    """`ShardCalls` over a shard deployment's handle, for one collection (every call names it:
    a shard deployment serves its shard of every collection)."""

    def state(self, terms: Sequence[str]) -> Any:
        return self.call("state", tuple(terms))

    def candidates(self, request: CandidateRequest) -> Any:
        return self.call("candidates", request)

    def windows(self, request: WindowRequest) -> Any:
        return self.call("windows", request)

    def vectors(self, request: VectorRequest) -> Any:
        return self.call("vectors", request)

    def health(self) -> Any:
        return self.call("health")

    def listing(self) -> Any:
        return self.call("listing")

    def document(self, document_id: str) -> Any:
        return self.call("document", document_id)


class RemoteWriter(_RemoteCalls):
    """A shard writer deployment's handle (`service.sharded.writers`), for one collection."""

    def write(self, change: Change) -> Any:
        return self.call("write", change)

    def health(self) -> Any:
        return self.call("health")

    def optimize(self) -> Any:
        return self.call("optimize")

    def snapshot(self, name: str) -> Any:
        return self.call("snapshot", name)

    def snapshots(self) -> Any:
        return self.call("snapshots")

    def verify_snapshot(self, name: str) -> Any:
        return self.call("verify_snapshot", name)

    def restore(self, name: str) -> Any:
        return self.call("restore", name)

    def recover(self) -> Any:
        return self.call("recover")


class RemoteEmbedder:
    """The question encoder deployment as an `Embedder` (for the searcher's fallback when no vector
    is given; searches here always give one). Blocking: for worker threads only."""

    def __init__(self, handle: Any, model_name: str, dimension: int) -> None:
        self.handle, self._model_name, self._dimension = handle, model_name, dimension

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        pending = [self.handle.encode.remote(text) for text in texts]
        rows = [response.result(timeout_s=CALL_TIMEOUT_SECONDS) for response in pending]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self._dimension)

    def count_tokens(self, text: str) -> int:
        count: int = self.handle.count_tokens.remote(text).result(timeout_s=CALL_TIMEOUT_SECONDS)
        return count


class ShardedEngine(Engine):
    def __init__(
        self,
        settings: Settings,
        shards: Sequence[Any],
        writers: Sequence[Any],
        encoder: Any,
        model: tuple[str, int],
        kinds: FailureKinds | None = None,
        collection: str = DEFAULT_COLLECTION,
    ) -> None:
        """`shards`, `writers`: each shard's query deployment's and writer deployment's handles,
        in shard order; `encoder`: the question encoder's; `model`: its (model name, dimension);
        `kinds`: which errors are a lost replica or a shard down (Ray's, `ray_failure_kinds`, by
        default); `collection`: the collection this engine serves. Use `connect`, which checks
        them, and `over` for the other collections."""
        embedder = RemoteEmbedder(encoder, *model)
        super().__init__(
            settings, embedder, IndexStore(collection_dir(settings, collection)), collection=collection
        )
        self.encoder, self.handles, self.model = encoder, (list(shards), list(writers)), model
        self.shards = [RemoteShard(shard, handle, collection) for shard, handle in enumerate(shards)]
        self.fan_out = RemoteFanOut(kinds or ray_failure_kinds(), settings.shard_timeout_seconds)
        remote_writers = [RemoteWriter(shard, handle, collection) for shard, handle in enumerate(writers)]
        write_fan_out = RemoteFanOut(self.fan_out.kinds, WRITE_TIMEOUT_SECONDS)
        self.document_routes = ShardedDocuments(self.shards, remote_writers, self.fan_out, write_fan_out)
        self.snapshot_routes = ShardedSnapshots(self.shards, remote_writers, self.fan_out, write_fan_out)
        self.searcher = ShardedSearcher(
            self.shards, embedder, settings.retrieval_options(), fan_out=self.fan_out
        )
        self._exists = collection == DEFAULT_COLLECTION  # `connect` found its commits
        self._model_checked = collection == DEFAULT_COLLECTION

    @classmethod
    async def connect(
        cls, settings: Settings, shards: Sequence[Any], writers: Sequence[Any], encoder: Any
    ) -> ShardedEngine:
        """An engine over these deployments' handles (`over_grpc`), once every one answers: no
        shard holding a commit is `IndexNotFoundError`, a shard built with another model
        `IndexMismatchError`."""
        shards, writers = [over_grpc(shard) for shard in shards], [over_grpc(writer) for writer in writers]
        encoder = over_grpc(encoder)
        model_name, dimension = await encoder.describe.remote()
        found: list[ShardHealth] = await asyncio.gather(
            *(shard.health.remote(DEFAULT_COLLECTION) for shard in shards)
        )
        _checked(found, model_name, dimension)
        return cls(settings, shards, writers, encoder, (model_name, dimension))

    def over(self, root: Path, collection: str) -> ShardedEngine:
        """Collection `collection`'s engine over the same deployments: every shard deployment and
        writer serves its shard of every collection, in the sharded index `root`
        (`collection_dir`). An index there must be a sharded one of this service's shard count
        (else `ShardLayoutError` / `ShardCountMismatchError`); none yet is fine: the first write
        creates it."""
        ShardedLayout.find(root, len(self.shards))
        return ShardedEngine(
            self.settings, *self.handles, self.encoder, self.model, self.fan_out.kinds, collection
        )

    def has_index_at(self, root: Path) -> bool:
        """Whether `root` holds a sharded index with a commit in some shard (or anything else that
        `over` will refuse, saying what it is)."""
        try:
            layout = ShardedLayout.find(root, len(self.shards))
        except IndexError_:
            return True
        return layout is not None and layout.has_commit()

    def has_index(self) -> bool:
        """Remembered once true: a collection is never deleted."""
        self._exists = self._exists or self.has_index_at(self.store.root)
        return self._exists

    # --- served ---------------------------------------------------------------------------

    def load(self) -> None:
        """Nothing to load here: `connect` checked the shards when the ingress started."""

    def health(self) -> IndexHealth:
        """The shards' live commits: the version as a search's (joined by ","), counts summed."""
        found: list[ShardHealth] = attempted(lambda: self.fan_out([shard.health for shard in self.shards]))
        _checked(found, self.embedder.model_name, self.embedder.dimension)
        self._model_checked = True
        return IndexHealth(
            VERSION_SEPARATOR.join(shard.version for shard in found),
            sum(shard.documents for shard in found),
            sum(shard.chunks for shard in found),
            sum(shard.segments for shard in found),
            sum(shard.segment_ceiling for shard in found),
        )

    def live_version(self) -> str | None:
        """`health`'s version; None while no shard holds a commit."""
        try:
            return self.health().version
        except IndexNotFoundError:
            return None

    def search(
        self,
        query: str,
        k: int,
        mode: Mode,
        context: int = 0,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> SearchOutcome:
        """`Engine.search` over the shards (blocking: from worker threads, as MCP tools run). The
        encoder is asked first and waited for after the shards' first step, which it overlaps."""
        self._check_model_once()
        return self._searched(self._question_vector(query), query, k, mode, context, filter, as_of)

    async def search_async(
        self,
        query: str,
        k: int,
        mode: Mode,
        context: int = 0,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> SearchOutcome:
        """`search` from a worker thread (Serve forbids waiting on the event loop's): the question's
        vector from the encoder (which batches concurrent questions), then the shards, all at
        once per step."""
        return await run_in_threadpool(self.search, query, k, mode, context, filter, as_of)

    def search_documents(
        self,
        query: str,
        k: int,
        feedback: bool,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> DocumentSearchOutcome:
        """`Engine.search_documents_async` over the shards, blocking (`search`'s two steps with
        more candidates per signal, two more with `feedback`: `index.sharding.coordinator`)."""
        self._check_model_once()
        vector = self._question_vector(query)
        return attempted(lambda: self.searcher.search_documents(query, k, vector, feedback, filter, as_of))

    async def search_documents_async(
        self,
        query: str,
        k: int,
        feedback: bool,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> DocumentSearchOutcome:
        """`search_documents` from a worker thread, as `search_async`."""
        return await run_in_threadpool(self.search_documents, query, k, feedback, filter, as_of)

    def _check_model_once(self) -> None:
        """Before this engine's first search: the collection's shards were built with the encoder's
        model (`health`; `connect` checked the default collection's)."""
        if not self._model_checked:
            self.health()

    def _question_vector(self, query: str) -> Callable[[], Vectors]:
        """The encoder's call issued now; what waits for its vector (once, however often called)."""
        issued = self.encoder.encode.remote(query)

        @functools.cache
        def vector() -> Vectors:
            with stage(ENCODE):
                return question_vector(
                    self.encoder, query, self.fan_out.kinds, self.fan_out.timeout_s, issued
                )

        return vector

    def _searched(
        self,
        vector: Callable[[], Vectors],
        query: str,
        k: int,
        mode: Mode,
        context: int,
        filter: Filter | None,
        as_of: dt.date | None,
    ) -> SearchOutcome:
        def searched() -> SearchOutcome:
            outcome = self.searcher.search(query, k, mode, vector, filter, as_of)
            return self.searcher.widened(outcome, context)

        return attempted(searched)

    def write(self, change: Change) -> Written:
        """A document route's write, through the owning shard's writer (`service.sharded.documents`).
        The searcher learns the shards' new commits from it (`ShardedSearcher.seen`)."""
        written = self.document_routes.write(change)
        self.searcher.seen(written.version)
        return written

    def listing(self) -> DocumentsAt:
        return attempted(self.document_routes.listing)

    def document_at(self, document_id: str) -> DocumentsAt:
        return attempted(lambda: self.document_routes.document_at(document_id))

    def optimize(self) -> Optimized:
        """Every shard merged into one segment by its writer, all at once
        (`service.sharded.documents`); the version is the shards' commits after it."""
        optimized = self.document_routes.optimize()
        self.searcher.seen(optimized.version)
        return optimized

    def snapshot(self, name: str) -> CommitSummary:
        """Every shard's live commit kept as snapshot `name` (`service.sharded.snapshots`)."""
        return self.snapshot_routes.snapshot(name)

    def snapshots(self) -> tuple[list[tuple[str, CommitSummary]], list[tuple[str, str]]]:
        return self.snapshot_routes.snapshots()

    def restore(self, name: str) -> Restored:
        """Every shard's snapshot `name` checked, then made live (`service.sharded.snapshots`)."""
        return self.snapshot_routes.restore(name)

    def recover_and_report(self) -> Recovered:
        """Every shard back to its newest intact commit point where its live one is damaged
        (`service.sharded.snapshots`)."""
        return self.snapshot_routes.recover()

    def start_merging(self) -> None:
        """Nothing merges here: each shard's writer starts its merges (`service.sharded.writers`)."""

    def stop_merging(self, timeout: float = 30.0) -> None:
        """Nothing merges here: each shard's writer starts its merges (`service.sharded.writers`)."""

    # --- not reached through the routes: a clear 501 ---------------------------------------

    @property
    def retriever(self) -> Retriever:
        _unsupported("reading the index outside a search")

    def sync(self, *args: Any, **kwargs: Any) -> NoReturn:
        _unsupported("building")

    def upsert(self, *args: Any, **kwargs: Any) -> NoReturn:
        _unsupported("writing outside the document routes")

    def remove(self, *args: Any, **kwargs: Any) -> NoReturn:
        _unsupported("writing outside the document routes")

    def merge(self, *args: Any, **kwargs: Any) -> NoReturn:
        _unsupported("merging segments outside `optimize`")

    def recover(self, *args: Any, **kwargs: Any) -> NoReturn:
        _unsupported("recovery outside `POST /admin/recover`")

    def writer(self, *args: Any, **kwargs: Any) -> NoReturn:
        _unsupported("writing")


def question_vector(
    encoder: Any, query: str, kinds: FailureKinds, timeout_s: float, issued: Any | None = None
) -> Vectors:
    """The encoder deployment's vector for `query` (`issued`: the first call's response, when
    already made). A replica lost under the call is asked again (up to `SEARCH_ATTEMPTS` calls in
    all); no answer within `timeout_s`, no replica to route to, or replicas lost on every attempt
    is `EncoderUnavailableError` (503), never a 500."""
    down_kinds: tuple[type[BaseException], ...] = (TimeoutError, *kinds.shard_down)
    for attempt in range(1, SEARCH_ATTEMPTS + 1):
        try:
            response = issued if attempt == 1 and issued is not None else encoder.encode.remote(query)
            row = response.result(timeout_s=timeout_s)
            return np.asarray(row, dtype=np.float32).reshape(-1)
        except kinds.replica_lost as lost:
            if attempt == SEARCH_ATTEMPTS:
                raise EncoderUnavailableError(
                    f"its replicas were lost on {SEARCH_ATTEMPTS} attempts"
                ) from lost
            time.sleep(LOST_REPLICA_PAUSE_SECONDS * attempt)
        except down_kinds as down:
            raise EncoderUnavailableError(f"no replica answered ({type(down).__name__})") from down
    raise AssertionError("unreachable")  # pragma: no cover


def attempted(answer: Callable[[], Answer]) -> Answer:
    """`answer()`, started again (up to `SEARCH_ATTEMPTS` in all) when a shard's commit went
    away or a shard's replica was lost under it; replicas lost on every attempt make that
    shard `ShardUnavailableError`."""
    for attempt in range(1, SEARCH_ATTEMPTS + 1):
        try:
            return answer()
        except ShardVersionGoneError:
            if attempt == SEARCH_ATTEMPTS:
                raise
        except ReplicaLostError as lost:
            if attempt == SEARCH_ATTEMPTS:
                raise ShardUnavailableError(
                    [lost.shard], f"its replicas were lost on {SEARCH_ATTEMPTS} attempts"
                ) from lost
            time.sleep(LOST_REPLICA_PAUSE_SECONDS * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _unsupported(what: str) -> NoReturn:
    raise NotSupportedInClusterModeError(what)


def _checked(found: Sequence[ShardHealth], model_name: str, dimension: int) -> None:
    if all(shard.version == EMPTY_VERSION for shard in found):
        raise IndexNotFoundError("no sharded index here yet: no shard holds a commit")
    for shard in found:
        if shard.model_name is not None and (shard.model_name, shard.dimension) != (model_name, dimension):
            raise IndexMismatchError(
                f"shard {shard.shard} was built with model {shard.model_name!r} ({shard.dimension} dims) "
                f"but the encoder runs {model_name!r} ({dimension} dims)"
            )
