"""Sustained ingest: one article a second into a running server while clients query it flat out.

One server (`eval.bench.hashing_app`: the real app with the fake 384-dimensional embedder and its
background merges) over a hard-linked copy of a cached base index. Closed-loop clients post
hybrid `/search` requests (SciFact questions) as fast as answers come, first with no writes
(idle), then for the ingest duration while one writer posts a ~3 KB article every second (each
write starts on its second, or as soon as the previous one returns if that is later) and
`/healthz` is sampled every few seconds for the segment count. Afterwards every acknowledged
article is read back (`GET /documents/{id}`, same text) and searched for: its made-up marker
word in BM25 mode must bring it back in the top 5 (the hybrid rank of the same query is reported
too: with a bag-of-words fake embedder the dense half of hybrid is noise for a made-up word).

The load generator runs in this process and shares the 2 cores with the server: its CPU time is
reported, and so is the CPU other processes on the machine used in each window (idle, ingest). Left out: the real model (question encoding would dominate), restarts, deletes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from eval.bench.figures import latency_summary, ratio
from eval.bench.hashing_app import DIMENSION, HASHING_APP
from eval.bench.machine import others_cpu, process_cpu
from eval.bench.server import running_app
from eval.bench.synthetic import Article

MONITOR_SECONDS = 5.0
WARM_UP_SECONDS = 3.0
SERIES_POINTS = 24  # segment counts kept for the report's series


class Served(Protocol):
    """What the load needs of a server: its URL, and its CPU seconds and memory so far (a
    `RunningServer`, or the processes of a cluster serving the sharded service)."""

    url: str

    def cpu_seconds(self) -> float: ...

    def memory_mb(self) -> float | None: ...


@dataclass
class LoadRun:
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    write_latencies_ms: list[float] = field(default_factory=list)
    acknowledged: list[Article] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    others: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "queries": len(self.latencies_ms),
            "queries_per_s": round(len(self.latencies_ms) / self.seconds, 1) if self.seconds else None,
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "query": latency_summary(self.latencies_ms),
            "writes": len(self.write_latencies_ms),
            "write": latency_summary(self.write_latencies_ms),
            "client_cores": round(self.client_cpu_s / self.seconds, 2) if self.seconds else None,
            "server_cores": round(self.server_cpu_s / self.seconds, 2) if self.seconds else None,
            "other_processes": self.others,
        }


def ingest_phase(
    index_dir: Path,
    log_path: Path,
    questions: Sequence[str],
    articles: Sequence[Article],
    clients: int,
    idle_seconds: float,
    ingest_seconds: float,
    say: Callable[[str], None],
) -> dict[str, Any]:
    with running_app(index_dir, HASHING_APP, log_path) as server:
        start = httpx.get(f"{server.url}/healthz", timeout=60).json()
        say(f"  ingest: {start['documents']:,} documents, {start['segments']} segments; warm-up")
        asyncio.run(ingest_load(server, questions, clients, WARM_UP_SECONDS, []))
        say(f"  ingest: idle, {clients} clients, {idle_seconds:.0f} s")
        idle = asyncio.run(ingest_load(server, questions, clients, idle_seconds, []))
        say(f"  ingest: one article a second for {ingest_seconds:.0f} s, {clients} clients querying")
        busy = asyncio.run(ingest_load(server, questions, clients, ingest_seconds, articles))
        say(f"  ingest: checking the {len(busy.acknowledged)} acknowledged articles")
        check = _check(server.url, busy.acknowledged)
        final = httpx.get(f"{server.url}/healthz", timeout=60).json()
        peak = server.peak_memory_mb()
    segments = [point["segments"] for point in busy.health]
    idle_p99, busy_p99 = idle.summary()["query"].get("p99_ms"), busy.summary()["query"].get("p99_ms")
    step = max(1, len(busy.health) // SERIES_POINTS)
    return {
        "embedder": f"hashing-fake, dimension {DIMENSION}",
        "clients": clients,
        "documents_before": start["documents"],
        "segments_before": start["segments"],
        "idle": idle.summary(),
        "ingest": busy.summary(),
        "p50_ratio": ratio(busy.summary()["query"].get("p50_ms"), idle.summary()["query"].get("p50_ms")),
        "p99_ratio": ratio(busy_p99, idle_p99),
        "articles_acknowledged": len(busy.acknowledged),
        "check": check,
        "segments": {
            "min": min(segments, default=None),
            "max": max(segments, default=None),
            "final": final["segments"],
            "documents_final": final["documents"],
            "series": [[round(p["t"]), p["segments"]] for p in busy.health[::step]],
        },
        "server_rss_mb_series": [[round(p["t"]), p["rss_mb"]] for p in busy.health[::step]],
        "server_peak_mb": peak,
    }


async def ingest_load(
    server: Served,
    questions: Sequence[str],
    clients: int,
    seconds: float,
    articles: Sequence[Article],
    writers: int = 1,
) -> LoadRun:
    """`clients` closed-loop hybrid searchers for `seconds` while `writers` writers each POST one
    of `articles` a second (none: an idle run); `/healthz` is sampled meanwhile."""
    run = LoadRun()
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    cycle = itertools.cycle(questions)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120.0) as client:
        cpu, server_cpu, processes = time.process_time(), server.cpu_seconds(), process_cpu()
        started = time.perf_counter()
        deadline = started + seconds
        tasks = [_searcher(client, cycle, deadline, run) for _ in range(clients)]
        tasks.append(_monitor(client, server, started, deadline, run))
        if articles:
            tasks += [_writer(client, articles[n::writers], started, deadline, run) for n in range(writers)]
        await asyncio.gather(*tasks)
        run.seconds = time.perf_counter() - started
        run.client_cpu_s = time.process_time() - cpu
        run.server_cpu_s = server.cpu_seconds() - server_cpu
        run.others = others_cpu(processes, process_cpu(), run.seconds)
    return run


async def _searcher(client: httpx.AsyncClient, questions: Any, deadline: float, run: LoadRun) -> None:
    while time.perf_counter() < deadline:
        body = {"query": next(questions), "k": 5, "mode": "hybrid"}
        asked = time.perf_counter()
        try:
            response = await client.post("/search", json=body)
        except httpx.HTTPError as error:
            run.errors.append(f"search: {type(error).__name__}: {error}")
            continue
        run.latencies_ms.append(1000 * (time.perf_counter() - asked))
        if response.status_code != 200:
            run.errors.append(f"search: HTTP {response.status_code}: {response.text[:200]}")


async def _writer(
    client: httpx.AsyncClient, articles: Sequence[Article], started: float, deadline: float, run: LoadRun
) -> None:
    for number, article in enumerate(articles):
        due = started + number  # one a second, on the second
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if time.perf_counter() >= deadline:
            return
        asked = time.perf_counter()
        try:
            response = await client.post("/documents", json=article.payload())
        except httpx.HTTPError as error:
            run.errors.append(f"write {article.document.id}: {type(error).__name__}: {error}")
            continue
        run.write_latencies_ms.append(1000 * (time.perf_counter() - asked))
        if response.status_code == 200 and response.json().get("status") == "added":
            run.acknowledged.append(article)
        else:
            run.errors.append(
                f"write {article.document.id}: HTTP {response.status_code}: {response.text[:200]}"
            )


async def _monitor(
    client: httpx.AsyncClient, server: Served, started: float, deadline: float, run: LoadRun
) -> None:
    while True:
        try:
            health = (await client.get("/healthz")).json()
            run.health.append(
                {
                    "t": time.perf_counter() - started,
                    "segments": health["segments"],
                    "documents": health["documents"],
                    "rss_mb": server.memory_mb(),
                }
            )
        except httpx.HTTPError as error:
            run.errors.append(f"healthz: {type(error).__name__}: {error}")
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return
        await asyncio.sleep(min(MONITOR_SECONDS, remaining))


def _check(url: str, acknowledged: Sequence[Article]) -> dict[str, Any]:
    """Every acknowledged article readable with its text, and found by its marker word."""
    missing, wrong_text, not_found_bm25, hybrid_ranks = [], [], [], []
    with httpx.Client(base_url=url, timeout=120.0) as client:
        for article in acknowledged:
            document_id = article.document.id
            response = client.get(f"/documents/{document_id}")
            if response.status_code != 200:
                missing.append(document_id)
                continue
            if response.json()["text"] != article.document.text:
                wrong_text.append(document_id)
            for mode in ("bm25", "hybrid"):
                body = {"query": f"reference code {article.marker}", "k": 5, "mode": mode}
                results = client.post("/search", json=body).json()["results"]
                ranks = [r["rank"] for r in results if r["document"]["id"] == document_id]
                if mode == "bm25" and not ranks:
                    not_found_bm25.append(document_id)
                if mode == "hybrid":
                    hybrid_ranks.append(ranks[0] if ranks else None)
    return {
        "checked": len(acknowledged),
        "missing": missing,
        "wrong_text": wrong_text,
        "not_found_bm25_top5": not_found_bm25,
        "found_hybrid_top5": sum(rank is not None for rank in hybrid_ranks),
        "ok": not missing and not wrong_text and not not_found_bm25,
    }
