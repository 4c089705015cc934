"""`make loadtest`: queries at several concurrencies while documents are added and removed.

A bounded run on loopback. It builds a fresh index of the bundled corpus in a temporary
directory, starts `uvicorn service.app:create_app` on 127.0.0.1 and a free port, then for each
concurrency level runs that many query workers (httpx, async) for at most `--seconds` or
`--max-requests`, while one writer keeps adding, replacing and removing documents through the
API the whole time. It reports requests, errors and p50/p99 latency per level and for the
writes, then checks that the server holds exactly what the acknowledged writes say ("lost
changes" must be zero). Exit status 1 if there were errors or lost changes.

Out of scope: remote servers (a `--url` that is not loopback is refused) and realistic traffic
mixes; this is a guard against errors and lost writes under concurrency, not a capacity plan.

    python -m eval.loadtest                       # real model, concurrency 1, 4, 16
    python -m eval.loadtest --embedder hashing --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "what projects could Larijani's visit accelerate?",
    "Who did Iran Daily interview about security dialogues?",
    "Why would Iran and Pakistan sign a defence pact?",
    "Gwadar harbour shipping bulletin",
    "What did the ministers say about border markets?",
]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def line(self, label: str, elapsed: float) -> str:
        count = len(self.latencies) + len(self.errors)
        if not self.latencies:
            return f"{label:<14} {count:>8} {len(self.errors):>7} {'-':>9} {'-':>9} {'-':>8}"
        p50, p99 = np.percentile(np.array(self.latencies) * 1000, [50, 99])
        return (
            f"{label:<14} {count:>8} {len(self.errors):>7} {p50:>9.1f} {p99:>9.1f} "
            f"{count / max(elapsed, 1e-9):>8.1f}"
        )


@dataclass
class WriterState:
    expected: dict[str, str | None] = field(default_factory=dict)  # id -> text, None if removed
    tally: Tally = field(default_factory=Tally)
    running: bool = True


async def query_worker(client: httpx.AsyncClient, tally: Tally, deadline: float, budget: list[int]) -> None:
    number = 0
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        question = QUESTIONS[number % len(QUESTIONS)]
        number += 1
        started = time.perf_counter()
        try:
            response = await client.get("/search", params={"q": question, "k": 5})
        except httpx.HTTPError as error:
            tally.errors.append(f"{type(error).__name__}: {error}")
            continue
        if response.status_code == 200 and response.json().get("index_version"):
            tally.latencies.append(time.perf_counter() - started)
        else:
            tally.errors.append(f"{response.status_code}: {response.text[:200]}")


async def writer(client: httpx.AsyncClient, state: WriterState) -> None:
    """Add a document, replace it, remove it; again and again until told to stop."""
    number = 0
    while state.running:
        doc_id = f"load-{number - number % 3}"
        text = f"Load bulletin {number}: the harbour at Gwadar logged {number * 3} ship calls."
        started = time.perf_counter()
        try:
            if number % 3 == 2:
                response = await client.delete(f"/documents/{doc_id}")
            else:
                response = await client.post(
                    "/documents", json={"id": doc_id, "title": "Bulletin", "text": text}
                )
        except httpx.HTTPError as error:
            state.tally.errors.append(f"{type(error).__name__}: {error}")
            break  # the outcome of this write is unknown; stop so the final check stays exact
        if response.status_code == 200:
            state.tally.latencies.append(time.perf_counter() - started)
            state.expected[doc_id] = None if number % 3 == 2 else text
        else:
            state.tally.errors.append(f"write {response.status_code}: {response.text[:200]}")
        number += 1


async def lost_changes(client: httpx.AsyncClient, expected: dict[str, str | None]) -> list[str]:
    lost = []
    for doc_id, text in expected.items():
        response = await client.get(f"/documents/{doc_id}")
        if text is None and response.status_code != 404:
            lost.append(f"{doc_id}: removed but still served")
        elif text is not None and (response.status_code != 200 or response.json()["text"] != text):
            lost.append(f"{doc_id}: acknowledged write missing or stale")
    return lost


async def run(url: str, levels: list[int], seconds: float, max_requests: int, headers: dict[str, str]) -> int:
    limits = httpx.Limits(max_connections=max(levels) + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=headers) as client:
        state = WriterState()
        writes = asyncio.create_task(writer(client, state))
        started = time.monotonic()
        say(f"{'concurrency':<14} {'requests':>8} {'errors':>7} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8}")
        query_errors = 0
        for level in levels:
            tally, budget = Tally(), [max_requests]
            level_start = time.monotonic()
            deadline = level_start + seconds
            await asyncio.gather(*(query_worker(client, tally, deadline, budget) for _ in range(level)))
            say(tally.line(f"queries x{level}", time.monotonic() - level_start))
            query_errors += len(tally.errors)
            for error in tally.errors[:3]:
                say(f"    error: {error}")
        state.running = False
        await writes
        say(state.tally.line("writes", time.monotonic() - started))
        for error in state.tally.errors[:3]:
            say(f"    error: {error}")
        lost = await lost_changes(client, state.expected)
        say(f"lost changes: {len(lost)} of {len(state.expected)} documents checked")
        for item in lost[:5]:
            say(f"    {item}")
    return 1 if query_errors or state.tally.errors or lost else 0


def require_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load-test {url}: only loopback servers (127.0.0.1, ::1, localhost)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(index_dir: Path, embedder: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    from corpus import load_corpus
    from service.config import Settings
    from service.engine import Engine

    settings = Settings(_env_file=None, index_dir=index_dir, embedder=embedder)  # type: ignore[call-arg]
    Engine.from_settings(settings).sync(load_corpus(settings.corpus_dirs))
    port = free_port()
    # The developer's own RAG_* settings (keys, limits) would change what is measured: drop them.
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("RAG_")},
        "HF_HUB_OFFLINE": "1",
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_EMBEDDER": embedder,
        "RAG_HOST": "127.0.0.1",
    }
    command = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:  # loaded, not just listening
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    server.wait()
    raise SystemExit(f"server did not start; log:\n{log.read_text(errors='replace')}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated worker counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="at most this long per level")
    parser.add_argument("--max-requests", type=int, default=2000, help="at most this many queries per level")
    parser.add_argument(
        "--embedder", choices=["sentence-transformers", "hashing"], default="sentence-transformers"
    )
    parser.add_argument(
        "--url", help="test this loopback server instead of starting one (it must allow writes)"
    )
    parser.add_argument("--key", default="", help="admin key for --url, sent as a Bearer token")
    arguments = parser.parse_args()
    levels = [int(level) for level in arguments.concurrency.split(",") if level.strip()]
    headers = {"Authorization": f"Bearer {arguments.key}"} if arguments.key else {}
    if arguments.url:
        require_loopback(arguments.url)
        sys.exit(asyncio.run(run(arguments.url, levels, arguments.seconds, arguments.max_requests, headers)))
    with tempfile.TemporaryDirectory(prefix="rag-loadtest-") as directory:
        server, url = start_server(
            Path(directory) / "index", arguments.embedder, Path(directory) / "server.log"
        )
        try:
            say(f"server {url} ({arguments.embedder}), index in {directory}")
            status = asyncio.run(run(url, levels, arguments.seconds, arguments.max_requests, headers))
        finally:
            server.terminate()
            server.wait(timeout=30)
    sys.exit(status)


if __name__ == "__main__":
    main()
