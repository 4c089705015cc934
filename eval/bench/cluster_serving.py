"""The cluster phase's cluster side: a local Ray cluster, the sharded service on it, its CPU.

In scope:

* `local_cluster`: a head and one worker node on this machine, each in its own PID namespace
  (`service.cluster.local`, as `rag cluster up` and tests/cluster start one), stopped exactly
  (by the pids it recorded) however the phase ends; never Ray's own stop command;
* `sharded_service`: `rag serve --cluster ADDRESS` (`service.sharded.deployments.deploy`) over a
  sharded index, its HTTP proxy on a free 127.0.0.1 port, with no keys (writes are open on
  loopback, as for the single-process server of `eval.bench.server`); ready once `GET /search`
  answers; Serve is shut down afterwards (the cluster is stopped by `local_cluster` anyway);
* `ClusterService.cpu_seconds` / `memory_mb`: the CPU time and resident memory of every process
  of the cluster's nodes (the descendants of their `unshare` processes: raylets, GCS, Serve's
  proxy and controller, the replicas), the sharded service's counterpart of one server process;
* `write_probe`: one `POST /documents` on an idle service, timed, before the ingest load (a
  service that refuses it is reported with the refusal, not loaded).

Left out: clusters of several machines, replicas other than the settings' defaults, measuring.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from eval.bench.machine import CpuSnapshot, process_cpu
from eval.bench.server import ServerError, code_environment, free_port
from eval.bench.synthetic import Article
from service.cluster import RAY_DEFAULTS
from service.cluster.local import LocalCluster

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_TIMEOUT_SECONDS = 600.0
READY_TIMEOUT_SECONDS = 300.0
SHUTDOWN_SCRIPT = """
import sys
import ray
from ray import serve
ray.init(address=sys.argv[1], log_to_driver=False)
serve.shutdown()
ray.shutdown()
"""


@contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    """A head and one worker node (separate processes), stopped exactly on the way out."""
    from service.cluster.local import start_cluster, stop_cluster

    cluster = start_cluster(workers=1)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def service_environment(index_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `rag` command of the phase: this code first on PYTHONPATH, none of
    the caller's `RAG_*` settings, the model offline, Ray's defaults, `index_dir` as the index."""
    return {
        **RAY_DEFAULTS,
        **code_environment(PROJECT_ROOT),
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_API_KEYS": "",
        "RAG_ADMIN_KEYS": "",
        "TOKENIZERS_PARALLELISM": "false",
        **(extra or {}),
    }


def descendants(snapshot: CpuSnapshot, roots: Sequence[int]) -> set[int]:
    """`roots` and every process below them in `snapshot`."""
    found = set(roots)
    while True:
        more = {pid for pid, (_, parent) in snapshot.processes.items() if parent in found} - found
        if not more:
            return found
        found |= more


@dataclass
class ClusterService:
    url: str
    node_pids: tuple[int, ...]
    startup_seconds: float

    def cpu_seconds(self) -> float:
        """CPU seconds the cluster's live processes have used so far (ended ones not counted)."""
        snapshot = process_cpu()
        return sum(snapshot.processes[pid][0] for pid in descendants(snapshot, self.node_pids))

    def memory_mb(self) -> float | None:
        """Resident memory of every process of the cluster's nodes together."""
        total = 0.0
        for pid in descendants(process_cpu(), self.node_pids):
            try:
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            total += pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        return round(total, 1)


@contextmanager
def sharded_service(
    cluster: LocalCluster,
    index_dir: Path,
    first_question: str,
    log_path: Path,
    settings: dict[str, str] | None = None,
) -> Iterator[ClusterService]:
    """`rag serve --cluster` over the sharded index in `index_dir`, ready to answer (`settings`:
    `RAG_*` variables to set besides); Serve shut down on the way out."""
    port = free_port()
    command = [sys.executable, "-m", "eval.cli", "serve", "--cluster", cluster.address]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        with open(log_path, "ab") as log:
            done = subprocess.run(
                command,
                env=service_environment(index_dir, settings),
                cwd=log_path.parent,  # no project `.env`
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=DEPLOY_TIMEOUT_SECONDS,
                check=False,
            )
        if done.returncode != 0:
            raise ServerError(f"rag serve --cluster exited with {done.returncode}: {_tail(log_path)}")
        _wait_for_search(url, first_question, started + READY_TIMEOUT_SECONDS)
        node_pids = tuple(node.pid for node in cluster.nodes)
        yield ClusterService(url, node_pids, time.perf_counter() - started)
    finally:
        _shutdown_serve(cluster.address, log_path)


def _wait_for_search(url: str, question: str, deadline: float) -> None:
    with httpx.Client(base_url=url, timeout=60.0) as client:
        while True:
            try:
                if client.get("/search", params={"q": question, "k": 5}).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # the proxy is not listening yet
            if time.perf_counter() > deadline:
                raise ServerError(f"the sharded service at {url} did not answer GET /search in time")
            time.sleep(0.5)


def _shutdown_serve(address: str, log_path: Path) -> None:
    """Serve's applications, proxy and controller removed (best effort: stopping the cluster
    ends them anyway)."""
    with open(log_path, "ab") as log:
        try:
            subprocess.run(
                [sys.executable, "-c", SHUTDOWN_SCRIPT, address],
                env={**RAY_DEFAULTS, **code_environment(PROJECT_ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired:
            log.write(b"serve.shutdown() did not return within 120 s; the cluster is stopped anyway\n")


def write_probe(url: str, article: Article) -> dict[str, Any]:
    """One `POST /documents` (JSON id/title/text, as the single-process service takes it): its
    status, latency and, when refused, the error's code and message."""
    started = time.perf_counter()
    response = httpx.post(f"{url}/documents", json=article.payload(), timeout=120.0)
    probe: dict[str, Any] = {
        "status": response.status_code,
        "ms": round(1000 * (time.perf_counter() - started), 1),
    }
    if response.status_code != 200:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        probe["code"] = error.get("code") if isinstance(error, dict) else None
        probe["message"] = (error.get("message") if isinstance(error, dict) else None) or response.text[:300]
    return probe


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
