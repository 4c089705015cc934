"""A real server for the benchmark: `rag serve` on a free loopback port, timed and measured.

Start-up time is from spawning the process to the first successful answer (model load, index
load with checksums, first encoding). Peak memory is the server's high-water resident set
(`VmHWM` in /proc, so Linux only). The process is always stopped, even when a phase fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


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
def running_server(index_dir: Path, first_question: str, timeout: float = 300.0) -> Iterator[RunningServer]:
    port = free_port()
    environment = {
        **os.environ,
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_API_KEYS": "",
        "RAG_ADMIN_KEYS": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    command = [str(Path(sys.executable).parent / "rag"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = index_dir.parent / f"server-{port}.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would stall the server
        started = time.perf_counter()
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_answer(process, url, first_question, started + timeout, log_path)
        yield RunningServer(process, url, time.perf_counter() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_answer(
    process: subprocess.Popen[bytes], url: str, question: str, deadline: float, log_path: Path
) -> None:
    with httpx.Client(base_url=url, timeout=10.0) as client:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                errors = log_path.read_text(errors="replace")[-2000:]
                raise ServerError(f"server exited with {process.returncode}: {errors}")
            try:
                if client.post("/search", json={"query": question, "k": 5}).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.02)
    raise ServerError(f"no answer from {url} in time")


def _status_kb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
