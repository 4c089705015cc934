"""The Ray Serve deployments of the sharded service, and `deploy` (what `rag serve --cluster` runs).

* `ShardDeployment`, one per shard (`shard-<i>`, `RAG_SHARD_REPLICAS` replicas each): an
  `index.sharding.shard.Shard` over that shard's folder of the sharded index in `RAG_INDEX_DIR`
  (which every node must see at the same path), and one over its folder of each named
  collection's (`RAG_COLLECTIONS_DIR/<name>`, same shard count), answering `state`,
  `candidates`, `windows`, `vectors` and `health` for the collection each call names. Each
  replica keeps its own readers: a call for a commit it has not opened yet (the query's first
  call went to another replica) opens the live commit once and answers if that is the one asked
  for; otherwise `ShardVersionGoneError`, and the ingress asks again. `listing` and `document`
  read the live commit for the document routes.
* `ShardWriter`, one per shard (`writer-<i>`, one replica each): the shard's writes to every
  collection, group committed, its merges (in a merger actor of its own), its snapshots and recovery
  (`service.sharded.writers`). Query replicas never write.
* `JobsDeployment` (`jobs`, one replica): the bulk ingest jobs of every collection, stored and
  run in one place for the cluster (`service.sharded.jobs`).
* `QuestionEncoder` (`RAG_ENCODER_REPLICAS`): the project's question encoder
  (`question_encoder_for`, the same as a single process's), encoding questions in batches
  (`@serve.batch`, at most `RAG_QUERY_BATCH_SIZE` questions, waiting at most
  `RAG_QUERY_BATCH_WAIT_MS` for company).
* `Ingress`: the service's own FastAPI app (`service.app.create_app`) over a
  `service.sharded.engine.ShardedEngine`, its jobs the jobs deployment's: the same routes and
  API, served by Serve's proxy.

The CPU reservations (`*_CPUS`) are logical (Ray's scheduling), so small that a 2-CPU machine
holds three shards, their writers, the encoder and the ingress. The query deployments take many
calls at once (`QUERY_ONGOING`); the controller, its proxy and every replica run Serve's
lower-latency request path (`SERVE_ENVIRONMENT`: gRPC between them). Out of scope: starting or stopping a cluster,
building the sharded index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve import Application, Deployment
from ray.serve.handle import DeploymentHandle

from index.embedding import Vectors
from index.errors import IndexNotFoundError
from index.sharding.layout import Manifest, ShardedLayout
from index.sharding.messages import (
    CandidateRequest,
    ShardCandidates,
    ShardState,
    VectorRequest,
    WindowRequest,
)
from index.sharding.shard import EMPTY_VERSION, Shard, ShardVersionGoneError
from service.app import create_app
from service.collection_names import DEFAULT_COLLECTION
from service.collections import collection_dir
from service.config import Settings
from service.engine import DocumentsAt, embedder_for, question_encoder_for
from service.sharded.engine import ShardedEngine, over_grpc
from service.sharded.health import ShardHealth
from service.sharded.jobs import JOBS_CPUS, JobsDeployment, RemoteJobs
from service.sharded.writers import ShardWriter

APP_NAME = "rag"
PATH_SETTINGS = ("index_dir", "collections_dir", "model_cache_dir")
SHARD_CPUS = 0.25
ENCODER_CPUS = 0.5
INGRESS_CPUS = 0.25
WRITER_CPUS = 0.25
WRITER_ONGOING = 64  # writes waiting at one shard's writer join its next group commit
# Calls a query replica (ingress, encoder, shard) takes at once. Serve's default of 5 makes the
# proxy and the ingress hold the rest back and retry with back-off: measured at concurrency 32,
# 7.1 queries/s with 5 against 19.4 with 64, the cluster then mostly idle (docs/scale.md).
QUERY_ONGOING = 64
# Serve's lower-latency request path, measured in docs/scale.md: the parts of its
# `RAY_SERVE_THROUGHPUT_OPTIMIZED` mode that keep the HTTP port where RAG_PORT puts it (no direct
# ingress) and keep each replica's router on a loop of its own (the engine waits on handles from
# worker threads). Calls from the proxy, and between deployments (whose handles are made in the
# deploying process, so each replica sets their path itself: `over_grpc`), go over gRPC instead of
# Ray actor calls, with messages up to `MAX_MESSAGE_BYTES` (gRPC's default cap is 4 MiB; a shard's
# candidates carry their documents, a write a request body, a bulk job its stored input); user
# code runs on the replica's own event loop; Serve's request log lines are buffered; the start-up
# heap is frozen out of the collector's reach.
# Given to the controller (whose proxies inherit it) and to every replica, so it holds however the
# cluster was started.
MAX_MESSAGE_BYTES = 512 << 20
SERVE_ENVIRONMENT = {
    "RAY_SERVE_USE_GRPC_BY_DEFAULT": "1",
    "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH": str(MAX_MESSAGE_BYTES),
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
    "RAY_SERVE_FREEZE_GC_ON_STARTUP": "1",
}
# A reply that still travels as a Ray actor call's stays inside the reply up to 8 MiB: Ray's
# default puts replies over 100 KB in the object store, where calls at concurrency 32 took up to
# 60 s each (docs/scale.md).
REPLICA_ENVIRONMENT = {"env_vars": {**SERVE_ENVIRONMENT, "RAY_max_direct_call_object_size": str(8 << 20)}}
Answer = TypeVar("Answer")


class ShardDeployment:
    def __init__(self, settings: Settings, shard: int, shard_count: int) -> None:
        self.settings, self.shard, self.shard_count = settings, shard, shard_count
        layout = ShardedLayout.open(settings.index_dir, shard_count)
        self.shards = {DEFAULT_COLLECTION: Shard(shard, layout.store(shard))}
        self.merge_policy = settings.merge_policy()

    def state(self, collection: str, terms: tuple[str, ...]) -> ShardState:
        return self._shard(collection).state(terms)

    def candidates(self, collection: str, request: CandidateRequest) -> ShardCandidates:
        shard = self._shard(collection)
        return _at(shard, request.version, lambda: shard.candidates(request))

    def windows(self, collection: str, request: WindowRequest) -> tuple[tuple[int, int], ...]:
        shard = self._shard(collection)
        return _at(shard, request.version, lambda: shard.windows(request))

    def vectors(self, collection: str, request: VectorRequest) -> Vectors:
        shard = self._shard(collection)
        return _at(shard, request.version, lambda: shard.vectors(request))

    def health(self, collection: str) -> ShardHealth:
        try:
            reader = self._shard(collection).live()
        except IndexNotFoundError:
            reader = None
        return ShardHealth.of(self.shard, reader, self.merge_policy)

    def listing(self, collection: str) -> DocumentsAt:
        """Every document of the shard's live commit, with its version."""
        try:
            reader = self._shard(collection).live()
        except IndexNotFoundError:
            return DocumentsAt(EMPTY_VERSION, [])
        return DocumentsAt(reader.version, list(reader.documents()))

    def document(self, collection: str, document_id: str) -> DocumentsAt:
        """The document (none if the shard does not hold it) from the live commit, with its version."""
        try:
            reader = self._shard(collection).live()
        except IndexNotFoundError:
            return DocumentsAt(EMPTY_VERSION, [])
        document = reader.document(document_id)
        return DocumentsAt(reader.version, [] if document is None else [document])

    def _shard(self, collection: str) -> Shard:
        """This shard of `collection`'s sharded index, kept once the index exists; before its first
        write, a shard over the folder it will have, which answers as an empty shard."""
        shard = self.shards.get(collection)
        if shard is not None:
            return shard
        root = collection_dir(self.settings, collection)
        layout = ShardedLayout.find(root, self.shard_count)
        if layout is None:
            return Shard(self.shard, ShardedLayout(root, Manifest(self.shard_count)).store(self.shard))
        return self.shards.setdefault(collection, Shard(self.shard, layout.store(self.shard)))


def _at(shard: Shard, version: str, answer: Callable[[], Answer]) -> Answer:
    """`answer()`, once more after opening the live commit when this replica did not keep
    `version` (module docstring)."""
    try:
        return answer()
    except ShardVersionGoneError:
        if shard.live().version != version:
            raise
        return answer()


class QuestionEncoder:
    def __init__(self, settings: Settings) -> None:
        self.embedder = question_encoder_for(settings, embedder_for(settings))
        batcher: Any = self.encode  # Serve's batch wrapper, whose limits are set here
        batcher.set_max_batch_size(settings.query_batch_size)
        batcher.set_batch_wait_timeout_s(settings.query_batch_wait_ms / 1000)

    def describe(self) -> tuple[str, int]:
        return self.embedder.model_name, self.embedder.dimension

    def count_tokens(self, text: str) -> int:
        return self.embedder.count_tokens(text)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)  # replaced from the settings above
    async def encode(self, questions: list[str]) -> list[Vectors]:
        """Each question's unit vector (1-D float32); the model runs off the event loop."""
        vectors = await asyncio.to_thread(self.embedder.embed_batch, questions)
        return [vectors[row] for row in range(len(questions))]


class Ingress:
    async def __init__(  # type: ignore[misc]  # Serve awaits an ingress's async constructor
        self,
        settings: Settings,
        shards: list[DeploymentHandle[Any]],
        writers: list[DeploymentHandle[Any]],
        encoder: DeploymentHandle[Any],
        jobs: DeploymentHandle[Any],
    ) -> None:
        self.settings = settings
        self.engine = await ShardedEngine.connect(settings, shards, writers, encoder)
        self.jobs = RemoteJobs(over_grpc(jobs), self.engine.fan_out.kinds, MAX_MESSAGE_BYTES)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.settings, engine=self.engine, job_service=self.jobs)


SHARD: Deployment = serve.deployment(
    max_ongoing_requests=QUERY_ONGOING,
    ray_actor_options={"num_cpus": SHARD_CPUS, "runtime_env": REPLICA_ENVIRONMENT},
)(ShardDeployment)
# Exactly one writer per shard: its group commit is what lets concurrent writes share commits.
WRITER: Deployment = serve.deployment(
    num_replicas=1,
    max_ongoing_requests=WRITER_ONGOING,
    ray_actor_options={"num_cpus": WRITER_CPUS, "runtime_env": REPLICA_ENVIRONMENT},
)(ShardWriter)
# Exactly one: one runner owns the job store (`service.sharded.jobs`).
JOBS: Deployment = serve.deployment(
    name="jobs",
    num_replicas=1,
    ray_actor_options={"num_cpus": JOBS_CPUS, "runtime_env": REPLICA_ENVIRONMENT},
)(JobsDeployment)
ENCODER: Deployment = serve.deployment(
    max_ongoing_requests=QUERY_ONGOING,
    ray_actor_options={"num_cpus": ENCODER_CPUS, "runtime_env": REPLICA_ENVIRONMENT},
)(QuestionEncoder)
INGRESS: Deployment = serve.deployment(
    max_ongoing_requests=QUERY_ONGOING,
    ray_actor_options={"num_cpus": INGRESS_CPUS, "runtime_env": REPLICA_ENVIRONMENT},
)(serve.ingress()(Ingress))


def application(settings: Settings) -> Application:
    """The whole sharded service, ready for `serve.run`: one deployment per shard of the sharded
    index in `settings.index_dir` (checked against `settings.shards` when set), the encoder and
    the jobs deployment and the ingress, given `with_absolute_paths(settings)`."""
    settings = with_absolute_paths(settings)
    shard_count = ShardedLayout.open(settings.index_dir, settings.shards).shard_count
    shards = [
        SHARD.options(name=f"shard-{shard}", num_replicas=settings.shard_replicas).bind(
            settings, shard, shard_count
        )
        for shard in range(shard_count)
    ]
    writers = [
        WRITER.options(name=f"writer-{shard}").bind(settings, shard, shard_count)
        for shard in range(shard_count)
    ]
    encoder = ENCODER.options(num_replicas=settings.encoder_replicas).bind(settings)
    jobs = JOBS.bind(settings, shards, writers, encoder)
    ingress = INGRESS.options(num_replicas=settings.ingress_replicas)
    built: Application = ingress.bind(settings, shards, writers, encoder, jobs)
    return built


def with_absolute_paths(settings: Settings) -> Settings:
    """`settings` with its paths absolute as this process sees them: the replicas run in other
    working directories (a node's), where a relative `RAG_INDEX_DIR` would name another place."""
    return settings.model_copy(update={name: getattr(settings, name).absolute() for name in PATH_SETTINGS})


def application_from_args(args: dict[str, Any]) -> Application:
    """The application builder a Serve config names (`import_path:
    service.sharded.deployments:application_from_args`, as docs/kuberay/rayservice.yaml does):
    Serve passes the config's `args`, which are `Settings` fields (`index_dir`, `shard_replicas`,
    ...); the `RAG_*` environment gives every other setting."""
    return application(Settings(**args))


def deploy(settings: Settings, address: str | None = None, **init_options: Any) -> str:
    """Deploy the sharded service on the Ray cluster at `address` (unless this process is
    connected to one already), its HTTP proxy on `settings.host`:`settings.port`; returns the URL
    once every deployment is running. The service keeps running on the cluster after this
    process exits."""
    app = application(settings)  # the index is checked before the cluster is touched
    if not ray.is_initialized():
        ray.init(address=address, **init_options)
    # One HTTP proxy, on the head: proxies on several nodes of one machine would contend for the
    # same port (behind a load balancer, run one per node with Ray's EveryNode instead).
    serve.start(
        proxy_location="HeadOnly",
        http_options={"host": settings.host, "port": settings.port},
        controller_options={"runtime_env": {"env_vars": SERVE_ENVIRONMENT}},
    )
    serve.run(app, name=APP_NAME, route_prefix="/")
    return f"http://{settings.host}:{settings.port}"
