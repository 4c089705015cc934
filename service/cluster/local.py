"""A local Ray cluster of separate processes (a head and worker nodes) that stops exactly.

Each node is `ray start ... --block` run as PID 1 of its own PID namespace (`unshare --fork
--pid --mount-proc --kill-child`, which needs root or user namespaces): every process Ray starts
for the node (raylet, GCS, workers, whatever their process groups) lives in that namespace, and
when its PID 1 ends the kernel kills the rest. `stop_cluster` ends each node's PID 1 (SIGTERM, so
Ray shuts down cleanly; SIGKILL after a grace period), waits until the namespace is gone and
removes the cluster's temp dir. Nothing else is touched: never Ray's own stop command, which stops every Ray
process of the machine. The state file records the `unshare` processes by pid and start time (a
reused pid is never signalled) so another process (`rag cluster down`) can stop the cluster.

Every port is chosen free on this machine, so clusters of several users coexist. Ray 2.60
advertises the machine's address rather than 127.0.0.1 and binds GCS, raylet and agents on all
interfaces whatever --node-ip-address says (docs/scale.md). Out of scope: clusters of several
machines, autoscaling, serving.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from service.cluster import RAY_DEFAULTS

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_STATE_FILE = PROJECT_ROOT / ".rag" / "cluster.json"
RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_SECONDS = 180.0
STOP_GRACE_SECONDS = 10.0  # then SIGKILL: the namespace goes with its PID 1
NODE_CPUS = 2  # logical CPUs per node: an embedding actor and the layout tasks beside it
OBJECT_STORE_BYTES = 300 * 1024 * 1024

# The `unshare` processes this process started, kept so they are reaped (waited for), not leaked.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}
_HANDED_OUT: set[int] = set()  # ports `_free_port` gave, never given twice


class ClusterStartError(Exception):
    """A node did not start, or the nodes did not all join; the message holds its log's end."""


@dataclass(frozen=True)
class NodeProcess:
    role: str  # "head" or "worker"
    pid: int  # the `unshare` process, in this machine's PID namespace
    start_ticks: int  # its start time (/proc/PID/stat field 22): a reused pid is never signalled
    log: str


@dataclass(frozen=True)
class LocalCluster:
    address: str  # the head's GCS, 127.0.0.1:PORT
    temp_dir: str  # Ray's --temp-dir, shared by the nodes; removed by `stop_cluster`
    nodes: tuple[NodeProcess, ...]

    def save(self, state_file: Path) -> None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        staged = state_file.with_suffix(".tmp")
        staged.write_text(json.dumps(asdict(self), indent=2), "utf-8")
        staged.replace(state_file)

    @classmethod
    def load(cls, state_file: Path) -> LocalCluster | None:
        if not state_file.is_file():
            return None
        data = json.loads(state_file.read_text("utf-8"))
        return cls(data["address"], data["temp_dir"], tuple(NodeProcess(**node) for node in data["nodes"]))

    def running(self) -> bool:
        return any(_alive(node) for node in self.nodes)


def start_cluster(
    *,
    workers: int = 1,
    hidden_paths: Sequence[Path] = (),
    timeout: float = START_TIMEOUT_SECONDS,
) -> LocalCluster:
    """A head and `workers` worker nodes on 127.0.0.1, each in its own PID namespace; returns once
    all are alive in `ray.nodes()`. `hidden_paths` are directories the worker nodes do not see
    (each covered by an empty read-only tmpfs in their mount namespace): a storage path only the
    driver and the head reach, for tests. On failure every node started is stopped."""
    temp_dir = tempfile.mkdtemp(prefix="rc-", dir="/tmp")  # short: Ray's socket paths are limited
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = [*_node_flags(temp_dir), "--head", "--port", str(port), "--include-dashboard=false"]
    head += ["--ray-client-server-port", str(_free_port())]
    # The head's autoscaler monitor and dashboard export metrics on fixed ports unless told.
    metrics = {"AUTOSCALER_METRIC_PORT": str(_free_port()), "DASHBOARD_METRIC_PORT": str(_free_port())}
    started = [_spawn("head", head, temp_dir, environment=metrics)]
    cluster = LocalCluster(address, temp_dir, tuple(started))
    try:
        _wait_for_port(port, started[0], timeout)
        for number in range(workers):
            flags = [*_node_flags(temp_dir), "--address", address]
            started.append(_spawn(f"worker-{number + 1}", flags, temp_dir, hidden_paths))
        cluster = LocalCluster(address, temp_dir, tuple(started))
        _wait_for_nodes(cluster, 1 + workers, timeout)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: LocalCluster, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop exactly the cluster's nodes (workers first) and everything they started; wait until
    they are gone, then remove the temp dir."""
    for node in reversed(cluster.nodes):
        _stop_node(node, grace)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)


def _node_flags(temp_dir: str) -> list[str]:
    ports = {
        "--node-manager-port": _free_port(),
        "--object-manager-port": _free_port(),
        "--metrics-export-port": _free_port(),
        "--dashboard-agent-listen-port": _free_port(),
        "--dashboard-agent-grpc-port": _free_port(),
        "--runtime-env-agent-port": _free_port(),
    }
    return [
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp_dir}",
        f"--num-cpus={NODE_CPUS}",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats",
        "--block",
        *(f"{flag}={value}" for flag, value in ports.items()),
    ]


def _spawn(
    role: str,
    flags: list[str],
    temp_dir: str,
    hidden_paths: Sequence[Path] = (),
    environment: dict[str, str] | None = None,
) -> NodeProcess:
    command = [RAY, "start", *flags]
    if hidden_paths:  # mount the tmpfs inside the new mount namespace, then become the node
        mounts = " && ".join(
            f'mount -t tmpfs -o ro,size=1m rc-hidden "${i + 1}"' for i in range(len(hidden_paths))
        )
        command = ["sh", "-c", f'{mounts} && shift {len(hidden_paths)} && exec "$@"', "sh"]
        command += [str(path) for path in hidden_paths] + [RAY, "start", *flags]
    log = Path(temp_dir) / f"{role}.log"
    environment = {
        **RAY_DEFAULTS,
        **os.environ,
        **(environment or {}),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # The nodes' workers import this project (the pipeline's functions, the probe).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["unshare", "--fork", "--pid", "--mount-proc", "--kill-child", *command],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,  # a Ctrl-C meant for the starter never reaches the node
        )
    _STARTED[process.pid] = process
    return NodeProcess(role, process.pid, _start_ticks(process.pid) or 0, str(log))


def _wait_for_port(port: int, head: NodeProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(head):
            raise ClusterStartError(f"the head node exited at start-up:\n{_tail(head.log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise ClusterStartError(f"the head node took no connection within {timeout:g} s:\n{_tail(head.log)}")


def _wait_for_nodes(cluster: LocalCluster, count: int, timeout: float) -> None:
    from index.cluster.connect import alive_nodes, connected

    deadline = time.monotonic() + timeout
    with connected(cluster.address):
        while len(alive_nodes()) < count:
            dead = [node for node in cluster.nodes if not _alive(node)]
            if dead:
                raise ClusterStartError(f"the {dead[0].role} node exited at start-up:\n{_tail(dead[0].log)}")
            if time.monotonic() > deadline:
                raise ClusterStartError(f"{len(alive_nodes())} of {count} nodes joined within {timeout:g} s")
            time.sleep(0.5)


def _stop_node(node: NodeProcess, grace: float) -> None:
    if not _alive(node):
        _reap(node.pid)
        return
    init = _children(node.pid)  # the namespace's PID 1: `ray start --block` (or the mount shell)
    for pid in init:
        _signal(pid, signal.SIGTERM)
    if not _wait_gone(node, grace):
        for pid in init:
            _signal(pid, signal.SIGKILL)  # its namespace's processes die with it
        if not _wait_gone(node, grace) and _alive(node):
            _signal(node.pid, signal.SIGKILL)  # --kill-child: the namespace goes too
            _wait_gone(node, grace)
    _reap(node.pid)


def _wait_gone(node: NodeProcess, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(node.pid)
        if not _alive(node):
            return True
        time.sleep(0.2)
    return False


def _alive(node: NodeProcess) -> bool:
    """Whether the node's `unshare` process runs (and is the same process: same start time)."""
    ticks = _start_ticks(node.pid)
    return ticks is not None and ticks == node.start_ticks


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks; None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def _reap(pid: int) -> None:
    """Collect the exit status when this process started the node (no zombie is left)."""
    process = _STARTED.get(pid)
    if process is not None and process.poll() is not None:
        del _STARTED[pid]


def _free_port() -> int:
    """A port free on 127.0.0.1 now and not handed out before by this process: Ray's components
    bind theirs only once started, so two probes in a row may be given the same one (a node
    manager and an object manager on one port: the node fails to start)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _tail(log: str, lines: int = 30) -> str:
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
