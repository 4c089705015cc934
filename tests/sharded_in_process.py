"""The sharded service without Ray, for tests: its real deployments (`ShardDeployment`,
`ShardWriter`) called in this process through stand-ins for Serve's handles, under a real
`ShardedEngine`. What Ray itself does (processes, replicas, routing, failures) is tested on a
real cluster in tests/cluster."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from index.embedding import HashingEmbedder
from index.errors import IndexError_
from service.collections import Collections
from service.config import Settings
from service.jobs.service import JobService
from service.sharded.deployments import MAX_MESSAGE_BYTES, ShardDeployment
from service.sharded.engine import ShardedEngine
from service.sharded.failures import FailureKinds
from service.sharded.jobs import JobsDeployment, RemoteJobs
from service.sharded.writers import ShardWriter


class Answered:
    """A Serve `DeploymentResponse` stand-in: the call already ran (a coroutine to its end);
    `result` gives its answer or raises its error."""

    def __init__(self, call: Callable[[], Any]) -> None:
        try:
            answer = call()
            self.answer, self.error = asyncio.run(answer) if inspect.iscoroutine(answer) else answer, None
        except IndexError_ as error:  # raised again where Serve would raise it: in `result`
            self.answer, self.error = None, error

    def result(self, timeout_s: float) -> Any:
        if self.error is not None:
            raise self.error
        return self.answer

    def cancel(self) -> None:
        """Nothing to cancel: the call ran."""


class InProcessHandle:
    """A deployment handle whose `method.remote(...)` calls `target.method(...)` here: the call
    run to its end as an `Answered` (waited for with `.result`, as the engine waits), or, when
    `awaited`, the coroutine itself, which the caller awaits as it awaits Serve's response."""

    def __init__(self, target: object, awaited: bool = False) -> None:
        self.target, self.awaited = target, awaited

    def __getattr__(self, name: str) -> Any:
        method, awaited = getattr(self.target, name), self.awaited

        class Remote:
            @staticmethod
            def remote(*args: Any) -> Any:
                return method(*args) if awaited else Answered(lambda: method(*args))

        return Remote


class Encoder:
    def __init__(self) -> None:
        self.embedder = HashingEmbedder()

    def encode(self, question: str) -> Any:
        return self.embedder.embed_batch([question])[0]


def in_process_engine(settings: Settings, shard_count: int) -> ShardedEngine:
    """The sharded engine over the sharded index in `settings.index_dir` (the fake embedder),
    its shard deployments and writers running here."""
    shards = [InProcessHandle(ShardDeployment(settings, shard, shard_count)) for shard in range(shard_count)]
    writers = [InProcessHandle(ShardWriter(settings, shard, shard_count)) for shard in range(shard_count)]
    model = (HashingEmbedder.model_name, HashingEmbedder().dimension)
    return ShardedEngine(settings, shards, writers, InProcessHandle(Encoder()), model, FailureKinds())


def in_process_jobs(settings: Settings, engine: ShardedEngine) -> tuple[JobsDeployment, RemoteJobs]:
    """The jobs deployment over `engine`'s deployments, its runner started, and the ingress's
    `RemoteJobs` calling it here. Its async constructor only connects an engine to Serve's
    handles, so the deployment is given `engine` instead; stop it with `.service.stop()`."""
    deployment = object.__new__(JobsDeployment)
    deployment.service = JobService(settings, Collections(engine, settings).for_write)
    deployment.service.start()
    return deployment, RemoteJobs(
        InProcessHandle(deployment, awaited=True), FailureKinds(), MAX_MESSAGE_BYTES
    )
