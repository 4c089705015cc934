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
from service.config import Settings
from service.sharded.deployments import ShardDeployment
from service.sharded.engine import ShardedEngine
from service.sharded.failures import FailureKinds
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
    """A deployment handle whose `method.remote(...)` calls `target.method(...)` here."""

    def __init__(self, target: object) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.target, name)

        class Remote:
            @staticmethod
            def remote(*args: Any) -> Answered:
                return Answered(lambda: method(*args))

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
