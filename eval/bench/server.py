"""A real server for the benchmark: `rag serve` on a free loopback port, timed and measured.

Start-up time is from spawning the process to the first successful answer (model load, index
load with checksums, first encoding). Peak memory is the server's high-water resident set
(`VmHWM` in /proc, so Linux only). The process is always stopped, even when a phase fails.
`running_app` serves another app factory instead (the write and ingest phases serve
`eval.bench.hashing_app`, the real app with a 384-dimensional fake embedder) and waits for
`/healthz` rather than a search. `running_code` serves the code in another directory (a
checkout of an earlier commit, for the baseline phase) with the same virtualenv and the service's
default settings.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ServerError(RuntimeError):
    """The benchmark server did not come up or answer."""


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    url: str
    startup_seconds: float

    def peak_memory_mb(self) -> float | None:
        return _status_kb(self.process.pid, "VmHWM")

    def memory_mb(self) -> float | None:
        return _status_kb(self.process.pid, "VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    index_dir: Path, first_question: str, timeout: float = 300.0, settings: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """`rag serve` over `index_dir`, ready once it answers `first_question`; `settings`: `RAG_*`
    variables to set besides."""
    port = free_port()
    environment = {
        **os.environ,
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_API_KEYS": "",
        "RAG_ADMIN_KEYS": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **(settings or {}),
    }
    command = [str(Path(sys.executable).parent / "rag"), "serve", "--host", "127.0.0.1", "--port", str(port)]

    def answers(client: httpx.Client) -> bool:
        return client.post("/search", json={"query": first_question, "k": 5}).status_code == 200

    log_path = index_dir.parent / f"server-{port}.log"
    with _serving(command, environment, port, log_path, answers, timeout, log_stdout=False) as server:
        yield server


def code_environment(code: Path) -> dict[str, str]:
    """The caller's environment without its `RAG_*` settings, the code in `code` first on
    PYTHONPATH, the model offline."""
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("RAG_")},
        "PYTHONPATH": str(code),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


@contextmanager
def running_code(
    code: Path,
    index_dir: Path,
    first_question: str,
    log_path: Path,
    timeout: float = 300.0,
    settings: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """`rag serve` (`python -m eval.cli serve`) with the code in `code` first on PYTHONPATH, over
    `index_dir`, with no keys and the service's default settings: none of the caller's `RAG_*`
    variables, and a working directory with no `.env` (the log's), so two checkouts compared
    run alike; `settings`: `RAG_*` variables to set all the same (the observability phase's)."""
    port = free_port()
    environment = {
        **code_environment(code),
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_API_KEYS": "",
        "RAG_ADMIN_KEYS": "",
        **(settings or {}),
    }
    command = [sys.executable, "-m", "eval.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]

    def answers(client: httpx.Client) -> bool:
        return client.post("/search", json={"query": first_question, "k": 5}).status_code == 200

    with _serving(
        command, environment, port, log_path, answers, timeout, log_stdout=False, cwd=log_path.parent
    ) as server:
        yield server


@contextmanager
def running_app(
    index_dir: Path, app: str, log_path: Path, timeout: float = 600.0, extra_env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """`python -m uvicorn <app> --factory` over `index_dir` on a free loopback port, with no keys
    (writes are open on loopback) and none of the caller's own `RAG_*` settings."""
    port = free_port()
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("RAG_")},
        "RAG_INDEX_DIR": str(index_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning"]

    def healthy(client: httpx.Client) -> bool:
        return client.get("/healthz").status_code == 200

    with _serving(command, environment, port, log_path, healthy, timeout, log_stdout=True) as server:
        yield server


@contextmanager
def _serving(
    command: list[str],
    environment: dict[str, str],
    port: int,
    log_path: Path,
    ready: Callable[[httpx.Client], bool],
    timeout: float,
    *,
    log_stdout: bool,
    cwd: Path = PROJECT_ROOT,
) -> Iterator[RunningServer]:
    """Start `command`, wait until `ready` answers True (start-up timed from the spawn), stop it
    afterwards whatever happened (terminate, then kill)."""
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would stall the server
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=environment,
            cwd=cwd,
            stdout=log if log_stdout else subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            while not _ready(process, client, ready, log_path):
                if time.perf_counter() > started + timeout:
                    raise ServerError(f"no answer from {url} in time")
                time.sleep(0.02)
        yield RunningServer(process, url, time.perf_counter() - started)
    finally:
        process.terminate()
        wait_or_kill(process)


def _ready(
    process: subprocess.Popen[bytes],
    client: httpx.Client,
    ready: Callable[[httpx.Client], bool],
    log_path: Path,
) -> bool:
    if process.poll() is not None:
        errors = log_path.read_text(errors="replace")[-2000:]
        raise ServerError(f"server exited with {process.returncode}: {errors}")
    try:
        return ready(client)
    except httpx.TransportError:
        return False  # not listening yet


def _status_kb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def wait_or_kill(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait for a process asked to stop; kill it if it has not within `timeout` seconds."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
