"""The sharded service's Serve settings without a cluster (`service.sharded.deployments`,
`service.sharded.failures.ray_failure_kinds`): every replica and the KubeRay manifest's controller
run Serve's lower-latency request path, the handles the deployments are given call over gRPC,
and a gRPC transport failure between deployments counts as a lost replica (retried), never as an
answer or a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from ray.exceptions import ActorUnavailableError
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ServeDeploySchema

from service.config import Settings
from service.sharded.deployments import (
    ENCODER,
    INGRESS,
    JOBS,
    SERVE_ENVIRONMENT,
    SHARD,
    WRITER,
    with_absolute_paths,
)
from service.sharded.engine import over_grpc
from service.sharded.failures import ray_failure_kinds

MANIFEST = Path(__file__).resolve().parents[1] / "docs" / "kuberay" / "rayservice.yaml"


@pytest.mark.parametrize("deployment", [SHARD, WRITER, JOBS, ENCODER, INGRESS], ids=lambda d: d.name)
def test_every_replica_runs_serves_lower_latency_path(deployment: object) -> None:
    environment = deployment.ray_actor_options["runtime_env"]["env_vars"]  # type: ignore[attr-defined]
    assert SERVE_ENVIRONMENT.items() <= environment.items()
    assert environment["RAY_SERVE_USE_GRPC_BY_DEFAULT"] == "1"


def test_a_handle_made_outside_the_replicas_environment_calls_by_reference() -> None:
    """Why `over_grpc` exists: this process, like the one that builds the application, lacks
    `SERVE_ENVIRONMENT`, and a handle made here sends its calls as Ray actor calls."""
    options: Any = DeploymentHandle("shard-0", "rag").handle_options  # Serve's own dataclass
    assert options._by_reference is True


def test_the_handles_a_deployment_is_given_call_over_grpc_in_plain_pickle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(DeploymentHandle, "_init", lambda handle, **options: None)  # no controller here
    options: Any = over_grpc(DeploymentHandle("shard-0", "rag")).handle_options
    assert options._by_reference is False
    assert (options.request_serialization, options.response_serialization) == ("pickle", "pickle")


def test_the_kuberay_manifest_gives_its_controller_the_same_environment() -> None:
    documents = list(yaml.safe_load_all(MANIFEST.read_text("utf-8")))
    service = next(document for document in documents if document["kind"] == "RayService")
    config = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    assert config.controller_options is not None
    assert config.controller_options.runtime_env == {"env_vars": SERVE_ENVIRONMENT}


def test_messages_hold_many_times_the_largest_request_body() -> None:
    largest_body = Settings.model_fields["max_body_bytes"].default
    assert int(SERVE_ENVIRONMENT["RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH"]) > 10 * largest_body


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL])
def test_a_grpc_failure_between_deployments_is_a_lost_replica(code: grpc.StatusCode) -> None:
    kinds = ray_failure_kinds()
    failure = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "socket closed")
    assert isinstance(failure, kinds.replica_lost)
    assert not isinstance(failure, kinds.shard_down)


def test_serves_own_translation_of_an_unavailable_replica_is_a_lost_replica() -> None:
    kinds = ray_failure_kinds()
    assert isinstance(ActorUnavailableError("Actor is unavailable.", None), kinds.replica_lost)


def test_the_replicas_get_the_paths_this_process_means(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    given = Settings(index_dir=Path(".rag/sharded"), collections_dir=Path("named"), model_cache_dir=Path("m"))
    absolute = with_absolute_paths(given)
    assert (absolute.index_dir, absolute.collections_dir, absolute.model_cache_dir) == (
        tmp_path / ".rag" / "sharded",
        tmp_path / "named",
        tmp_path / "m",
    )
