"""The load generator: N concurrent clients asking `/search` varied questions over HTTP.

Each client sends its next question as soon as the previous answer arrived (closed loop), over
its own keep-alive connection, so concurrency is exactly the number of clients (asyncio clients;
a blocking one at concurrency 1). The generator
runs in the benchmark process and shares the machine with the server: its own CPU time is
measured and reported next to the figures. Questions are POSTed as JSON, or with `get=True` sent
as `GET /search?q=...` (the baseline phase's way: the oldest route, which every version answers).
Each run keeps its latencies, so `pooled` can summarise several runs as one.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass(frozen=True)
class LoadFigures:
    mode: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    client_cpu_seconds: float
    server_cpu_seconds: float
    latencies_ms: tuple[float, ...] = field(default=(), repr=False)

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            # Share of one core used by the load generator while it ran, and by the server.
            "client_cores": round(self.client_cpu_seconds / self.seconds, 2),
            "server_cores": round(self.server_cpu_seconds / self.seconds, 2),
        }


def _body(question: str, mode: str) -> dict[str, object]:
    return {"query": question, "k": 5, "mode": mode}


def _params(question: str, mode: str) -> dict[str, str | int]:
    return {"q": question, "k": 5, "mode": mode}


def _request(client: httpx.Client, question: str, mode: str, get: bool) -> httpx.Response:
    if get:
        return client.get("/search", params=_params(question, mode))
    return client.post("/search", json=_body(question, mode))


async def _client(
    client: httpx.AsyncClient,
    questions: itertools.cycle[str],
    count: int,
    mode: str,
    latencies: list[float],
    get: bool = False,
) -> int:
    errors = 0
    for _ in range(count):
        question = next(questions)
        started = time.perf_counter()
        if get:
            response = await client.get("/search", params=_params(question, mode))
        else:
            response = await client.post("/search", json=_body(question, mode))
        latencies.append(time.perf_counter() - started)
        errors += response.status_code != 200
    return errors


async def _run(
    url: str,
    questions: Sequence[str],
    concurrency: int,
    requests: int,
    mode: str,
    server_cpu: Callable[[], float],
    get: bool,
) -> LoadFigures:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:
        warm = itertools.cycle(questions[-concurrency:])
        await asyncio.gather(*(_client(client, warm, 2, mode, [], get) for _ in range(concurrency)))
        cycle = itertools.cycle(questions)
        latencies: list[float] = []
        per_client = max(1, requests // concurrency)
        client_cpu, server_cpu_before = time.process_time(), server_cpu()
        started = time.perf_counter()
        errors = await asyncio.gather(
            *(_client(client, cycle, per_client, mode, latencies, get) for _ in range(concurrency))
        )
        seconds = time.perf_counter() - started
        client_cpu, server_seconds = time.process_time() - client_cpu, server_cpu() - server_cpu_before
    return _figures(mode, concurrency, latencies, sum(errors), seconds, client_cpu, server_seconds)


def run_load(
    url: str,
    questions: Sequence[str],
    concurrency: int,
    requests: int,
    mode: str,
    server_cpu: Callable[[], float],
    get: bool = False,
) -> LoadFigures:
    """`requests` questions (cycling through `questions`, so consecutive ones differ) at
    `concurrency`; `server_cpu` returns the server's CPU seconds so far. With wrk installed, wrk
    asks (`eval.bench.wrk`: the clients below cost the server's cores). One at a time, a plain
    blocking client does the asking: an event loop would add its own few milliseconds (measured:
    ~5 ms per request here) to every latency, and concurrency 1 is the figure compared with the
    floor."""
    from eval.bench.wrk import run_wrk, wrk_path

    if wrk := wrk_path():
        return run_wrk(wrk, url, questions, concurrency, requests, mode, server_cpu, get)
    if concurrency == 1:
        return _one_at_a_time(url, questions, requests, mode, server_cpu, get)
    return asyncio.run(_run(url, questions, concurrency, requests, mode, server_cpu, get))


def _one_at_a_time(
    url: str,
    questions: Sequence[str],
    requests: int,
    mode: str,
    server_cpu: Callable[[], float],
    get: bool,
) -> LoadFigures:
    with httpx.Client(base_url=url, timeout=60.0) as client:
        for question in questions[-2:]:  # warm-up, as for the concurrent runs
            _request(client, question, mode, get)
        cycle = itertools.cycle(questions)
        latencies: list[float] = []
        errors = 0
        client_cpu, server_cpu_before = time.process_time(), server_cpu()
        started = time.perf_counter()
        for _ in range(requests):
            asked = time.perf_counter()
            response = _request(client, next(cycle), mode, get)
            latencies.append(time.perf_counter() - asked)
            errors += response.status_code != 200
        seconds = time.perf_counter() - started
        client_cpu, server_seconds = time.process_time() - client_cpu, server_cpu() - server_cpu_before
    return _figures(mode, 1, latencies, errors, seconds, client_cpu, server_seconds)


def _figures(
    mode: str,
    concurrency: int,
    latencies: list[float],
    errors: int,
    seconds: float,
    client_cpu: float,
    server_seconds: float,
) -> LoadFigures:
    milliseconds = 1000 * np.asarray(latencies)
    p50, p95, p99 = (float(np.percentile(milliseconds, q)) for q in (50, 95, 99))
    return LoadFigures(
        mode,
        concurrency,
        len(latencies),
        errors,
        seconds,
        p50,
        p95,
        p99,
        client_cpu,
        server_seconds,
        tuple(float(value) for value in milliseconds),
    )


def pooled(runs: Sequence[LoadFigures]) -> LoadFigures:
    """Several runs of one mode and concurrency as one: requests, errors, seconds and CPU summed,
    percentiles over every latency (not a median of medians, which would weigh a short run as
    much as a long one)."""
    if not runs:
        raise ValueError("pooled() of no runs")
    latencies = [value / 1000 for run in runs for value in run.latencies_ms]
    return _figures(
        runs[0].mode,
        runs[0].concurrency,
        latencies,
        sum(run.errors for run in runs),
        sum(run.seconds for run in runs),
        sum(run.client_cpu_seconds for run in runs),
        sum(run.server_cpu_seconds for run in runs),
    )
