"""Reaching a Ray cluster and checking a storage path from every node of it, before any work.

`connected(address)` is a Ray driver session: the address must take a TCP connection within
`CONNECT_TIMEOUT_SECONDS` (Ray's own retries take a minute to give up) and Ray must attach to it;
either failure is `ClusterUnreachableError`. `check_storage(path)` runs one task on every alive
node that reads a file the driver wrote into the path and writes one back, which the driver then
reads: a node where the path is another filesystem, missing or read-only fails it, and
`StorageUnreachableError` names the node. The probe files are removed either way. Paths are local
(POSIX) paths: the writer's commit protocol needs rename and fsync (docs/scale.md says what that
means for object stores). Out of scope: starting clusters (service/cluster).
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from index.cluster import CONNECT_TIMEOUT_SECONDS, PROBE_TIMEOUT_SECONDS
from index.errors import IndexError_

PROBE_PREFIX = ".rag-probe-"


class ClusterUnreachableError(IndexError_):
    """The cluster address is malformed, takes no connection, or Ray cannot attach to it."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot reach the Ray cluster at {address!r}: {reason}; nothing was built")


class StorageUnreachableError(IndexError_):
    """A node of the cluster cannot read or write the storage path the driver writes to."""

    def __init__(self, path: Path, failures: list[str]) -> None:
        super().__init__(
            f"the storage path {path} is not the same writable directory on every node of the "
            f"cluster ({'; '.join(failures)}): use a path every node mounts; nothing was built"
        )


def parse_address(address: str) -> tuple[str, int]:
    """`host:port` of a cluster's head (GCS); `ray://` client addresses are not taken."""
    host, colon, port = address.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterUnreachableError(address, "expected HOST:PORT, the head node's GCS address")
    return host, int(port)


@contextmanager
def connected(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> Iterator[None]:
    """A Ray driver session on the cluster at `address`, shut down on exit."""
    host, port = parse_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise ClusterUnreachableError(address, f"no connection within {timeout:g} s ({error})") from error
    if ray.is_initialized():
        raise ClusterUnreachableError(address, "this process is already attached to a Ray cluster")
    try:
        ray.init(address=f"{host}:{port}", logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterUnreachableError(address, f"Ray could not attach to it ({error})") from error
    try:
        yield
    finally:
        ray.shutdown()


def alive_nodes() -> list[dict[str, Any]]:
    """The cluster's alive nodes, as `ray.nodes()` lists them (in a `connected` session)."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [node for node in nodes if node.get("Alive")]


def check_storage(path: Path, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """StorageUnreachableError unless every alive node can read what the driver writes into
    `path` and write a file the driver can read (in a `connected` session). A path that does not
    exist yet is probed at its nearest existing parent, where the build will create it."""
    directory = _nearest_existing(path)
    token = secrets.token_hex(8)
    marker = directory / f"{PROBE_PREFIX}{token}"
    marker.write_text(token, "utf-8")
    nodes = alive_nodes()
    answers: list[Path] = []
    try:
        refs = [
            _probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(str(directory), token)
            for node in nodes
        ]
        results: list[str] = ray.get(refs, timeout=timeout)
        failures = []
        for node, result in zip(nodes, results, strict=True):
            name = f"node {node['NodeID'][:12]} at {node['NodeManagerAddress']}"
            if result.startswith("error:"):
                failures.append(f"{name}: {result.removeprefix('error: ')}")
                continue
            answers.append(Path(result))
            if not Path(result).is_file() or Path(result).read_text("utf-8") != token:
                failures.append(f"{name}: the file it wrote in {directory} is not there for the driver")
    except ray.exceptions.GetTimeoutError as error:
        raise StorageUnreachableError(path, [f"the probe took more than {timeout:g} s"]) from error
    finally:
        for leftover in [marker, *answers]:
            leftover.unlink(missing_ok=True)
    if failures:
        raise StorageUnreachableError(path, failures)


@ray.remote(num_cpus=0)
def _probe(directory: str, token: str) -> str:
    """On one node: read the driver's marker in `directory`, write an answer beside it; the
    answer's path, or `error: why`."""
    marker = Path(directory) / f"{PROBE_PREFIX}{token}"
    try:
        if marker.read_text("utf-8") != token:
            return f"error: {marker} holds something else there"
    except OSError as error:
        return f"error: cannot read the driver's file there ({error.strerror or error})"
    answer = Path(directory) / f"{PROBE_PREFIX}{token}-{ray.get_runtime_context().get_node_id()[:12]}"
    try:
        answer.write_text(token, "utf-8")
    except OSError as error:
        return f"error: cannot write there ({error.strerror or error})"
    return str(answer)


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.is_dir():
        path = path.parent
    return path
