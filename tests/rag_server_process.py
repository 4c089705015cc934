"""A real `uvicorn` server process for tests that must kill it (`kill -9`) or load it over HTTP.

The server runs `service.app:create_app` on 127.0.0.1 and a free port, with the fake embedder
(`RAG_EMBEDDER=hashing`) and whatever other `RAG_*` settings the test passes. It is started once
`wait_for` (default `/readyz`: the index is loaded) answers 200; `wait_for=None` returns at once. `stop()` always
ends the process; `kill()` sends SIGKILL, as a crash would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live_server import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_APP = "service.app:create_app"
SERVER_COMMAND = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
STARTUP_LIMIT_SECONDS = 120  # a bound, not an assertion: a slow machine only makes it wait longer


class ServerProcess:
    def __init__(
        self,
        index_dir: Path,
        log_path: Path,
        app: str = REAL_APP,
        extra_env: dict[str, str] | None = None,
        wait_for: str | None = "/readyz",
        **settings: str,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {  # the developer's own RAG_* settings never leak into a test server
            **{name: value for name, value in os.environ.items() if not name.startswith("RAG_")},
            "HF_HUB_OFFLINE": "1",
            "RAG_INDEX_DIR": str(index_dir),
            "RAG_EMBEDDER": "hashing",
            "RAG_HOST": "127.0.0.1",
            **{f"RAG_{name.upper()}": value for name, value in settings.items()},
            **(extra_env or {}),
        }
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [*SERVER_COMMAND, app, "--factory", "--port", str(self.port)],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if wait_for is not None:
            self._wait_until_ready(log_path, wait_for)

    def _wait_until_ready(self, log_path: Path, probe: str) -> None:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start-up:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}{probe}", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{log_path.read_text(errors='replace')}")

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean-up code of the server runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
