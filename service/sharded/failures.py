"""What a shard call can fail with, and what the sharded service makes of it.

In scope: `ReplicaLostError` (the replica answering a shard call died or became unreachable
mid-call: the ingress starts the search again, and Serve's router sends it to another replica),
`ShardUnavailableError` (no replica of a shard answered: HTTP 503 `shard_unavailable` naming the
shards, never a 200 with fewer results), `EncoderUnavailableError` (no replica of the question
encoder answered: HTTP 503 `encoder_unavailable`), `JobsUnavailableError` (the jobs deployment did
not answer: HTTP 503 `jobs_unavailable`), and `FailureKinds`, which sorts the exceptions a Serve
`DeploymentResponse.result()` raises into the two. Ray is imported only by `ray_failure_kinds`,
so the single-process service imports this module without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ReplicaLostError(Exception):
    """A shard replica died during a call (retried by `ShardedEngine`, never answered as is)."""

    def __init__(self, shard: int, cause: BaseException) -> None:
        super().__init__(f"shard {shard}: its replica was lost during the call ({type(cause).__name__})")
        self.shard = shard


class ShardUnavailableError(Exception):
    """No replica of these shards answered (HTTP 503 `shard_unavailable`)."""

    def __init__(self, shards: Sequence[int], why: str) -> None:
        self.shards = tuple(sorted(set(shards)))
        names = ", ".join(f"shard-{shard}" for shard in self.shards)
        super().__init__(
            f"{names} unavailable: {why}; no partial answer is given (docs/scale.md, Failure); retry later"
        )


class EncoderUnavailableError(Exception):
    """No replica of the question encoder answered (HTTP 503 `encoder_unavailable`)."""

    def __init__(self, why: str) -> None:
        super().__init__(f"the question encoder is unavailable: {why}; retry later (docs/scale.md, Failure)")


class JobsUnavailableError(Exception):
    """The jobs deployment did not answer (HTTP 503 `jobs_unavailable`)."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"the jobs deployment did not answer ({why}); a job submitted may still have been "
            "stored: list the jobs, then retry (docs/scale.md, Failure)"
        )


@dataclass(frozen=True)
class FailureKinds:
    """`replica_lost`: a replica died under a call (worth a new attempt); `shard_down`: the
    shard has no replica to answer (Serve says the deployment is unavailable). A timeout is
    always `shard_down`."""

    replica_lost: tuple[type[BaseException], ...] = ()
    shard_down: tuple[type[BaseException], ...] = ()


def ray_failure_kinds() -> FailureKinds:
    """Ray 2.60's: a killed replica surfaces through `.result()` as `ActorDiedError` (a
    `RayActorError`), one that cannot be reached as `ActorUnavailableError` (also a
    `RayActorError`) or Serve's `ReplicaUnavailableError`; a deployment with no replica to route
    to (failed to deploy, or deleted) as Serve's `DeploymentUnavailableError`. Calls between
    deployments go over gRPC (`service.sharded.deployments.SERVE_ENVIRONMENT`): Serve turns a
    replica gone mid-call (`UNAVAILABLE`) into `ActorUnavailableError` and passes any other
    transport failure on as gRPC's `AioRpcError`, which is a lost replica too (never a result)."""
    import grpc
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import DeploymentUnavailableError, ReplicaUnavailableError

    return FailureKinds(
        replica_lost=(RayActorError, ReplicaUnavailableError, grpc.aio.AioRpcError),
        shard_down=(DeploymentUnavailableError,),
    )
