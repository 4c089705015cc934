"""Concurrent writers: documents/s with one writer against several, and segments against a ceiling.

`python -m eval.bench --phase writers`. For each writer count (1, then 8 by default) a fresh
empty index (`eval.bench.bases.empty_index`) is served by `eval.bench.hashing_app` (the real
app, fake 384-dimensional embedder, background merges on) and the same small documents
(`eval.bench.synthetic.small_documents`) are POSTed by that many threads, each with its own
`httpx.Client` and one request in flight, the documents dealt out round-robin. Meanwhile a
sampler polls `GET /healthz` every few tens of milliseconds for the live `segments` and the
`segment_ceiling` (the hard ceiling at which writers wait for merges; a server without
back-pressure has none, and that is reported as such, never guessed). After the writes the
segment count is left to settle (no change for a while, under the ceiling), every acknowledged
document is looked for in `GET /documents` and a sample read back whole, and the commits made
are counted from `index_version` generations.

In scope here: the load (`concurrent_writes`), the settling (`settle`), the checks
(`check_documents`), all shared with tests/test_concurrent_writers.py, which asserts on them; and
the pure summaries the report reads (`run_summary`, `phase_summary`). Left out: queries during
the writes (the ingest phase), replacements and deletes, the real model, and any pass/fail (the
report gives verdicts against the targets).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from corpus import Document
from eval.bench.bases import empty_index
from eval.bench.figures import latency_summary, ratio
from eval.bench.hashing_app import DIMENSION, HASHING_APP
from eval.bench.machine import others_cpu, process_cpu
from eval.bench.server import running_app
from eval.bench.synthetic import payload, small_documents
from index.embedding import HashingEmbedder
from index.settings import IndexSettings

SAMPLE_SECONDS = 0.03  # between two /healthz samples during the writes
REQUEST_SECONDS = 120.0  # one request's timeout
READ_BACK = 50  # acknowledged documents read back whole (all are looked for in the listing)
SERIES_POINTS = 40  # (seconds, segments, ceiling) points kept per run for the report
VERSION = re.compile(r"g(\d+)-")


@dataclass(frozen=True)
class HealthSample:
    seconds: float  # since the writes started
    segments: int
    ceiling: int | None  # None: `/healthz` has no `segment_ceiling`
    documents: int


@dataclass
class WriteLoad:
    """What `concurrent_writes` saw: per request, and from the sampler."""

    writers: int
    sent: int = 0
    seconds: float = 0.0  # from the start to the last writer's last answer
    latencies_ms: list[float] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # id -> the index_version it named
    failures: list[str] = field(default_factory=list)
    samples: list[HealthSample] = field(default_factory=list)
    sampler_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Settled:
    health: dict[str, Any]  # the last /healthz answer
    seconds: float
    settled: bool  # False: still changing, or over the ceiling, when the time ran out


def segment_ceiling(health: dict[str, Any]) -> int | None:
    """The `segment_ceiling` a `/healthz` answer reports, None when it has no such field."""
    value = health.get("segment_ceiling")
    return None if value is None else int(value)


def generation(index_version: str) -> int:
    """The commit generation in an `index_version` such as `g0000000123-20261203T162343Z`."""
    match = VERSION.match(index_version)
    if match is None:
        raise ValueError(f"not a generation's index_version: {index_version!r}")
    return int(match.group(1))


def concurrent_writes(
    url: str,
    documents: Sequence[Document],
    writers: int,
    *,
    sample_seconds: float = SAMPLE_SECONDS,
    limit_seconds: float = 600.0,
) -> WriteLoad:
    """POST `documents` from `writers` threads (writer i sends documents i, i + writers, ...,
    one at a time) while a thread samples `/healthz`. Bounded: no writer starts a request after
    `limit_seconds`, and each request times out; what was never sent counts in `sent`."""
    load = WriteLoad(writers)
    lock = threading.Lock()
    go, done = threading.Event(), threading.Event()
    finished: list[float] = []
    started = 0.0

    def write(share: Sequence[Document]) -> None:
        with httpx.Client(base_url=url, timeout=REQUEST_SECONDS) as client:
            go.wait()
            for document in share:
                if time.perf_counter() - started > limit_seconds:
                    break
                asked = time.perf_counter()
                try:
                    response = client.post("/documents", json=payload(document))
                    failure = (
                        None if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
                    )
                    version = str(response.json()["index_version"]) if response.is_success else ""
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    failure, version = f"{type(error).__name__}: {error}", ""
                answered = time.perf_counter()
                with lock:
                    load.sent += 1
                    load.latencies_ms.append(1000 * (answered - asked))
                    if failure is None:
                        load.acknowledged[document.id] = version
                    else:
                        load.failures.append(f"{document.id}: {failure}")
        with lock:
            finished.append(time.perf_counter())

    def sample() -> None:
        with httpx.Client(base_url=url, timeout=REQUEST_SECONDS) as client:
            go.wait()
            while True:
                last = done.is_set()  # one more sample after the writes end
                try:
                    health = _health(client)
                    load.samples.append(
                        HealthSample(
                            time.perf_counter() - started,
                            int(health["segments"]),
                            segment_ceiling(health),
                            int(health["documents"]),
                        )
                    )
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    load.sampler_errors.append(f"{type(error).__name__}: {error}")
                if last:
                    return
                done.wait(sample_seconds)

    threads = [
        threading.Thread(
            target=write, args=(documents[number::writers],), name=f"writer-{number}", daemon=True
        )
        for number in range(writers)
    ]
    sampler = threading.Thread(target=sample, name="healthz-sampler", daemon=True)
    for thread in [*threads, sampler]:
        thread.start()
    started = time.perf_counter()
    go.set()
    for thread in threads:  # bounded: the last request may start at the limit and take its timeout
        thread.join(max(0.0, started + limit_seconds + REQUEST_SECONDS + 5 - time.perf_counter()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    with lock:
        load.failures += [f"{name}: still waiting for an answer at the limit" for name in stuck]
        load.seconds = (max(finished) if finished and not stuck else time.perf_counter()) - started
    done.set()
    sampler.join(REQUEST_SECONDS + 5)
    return load


def settle(
    client: httpx.Client, limit_seconds: float, quiet_seconds: float = 1.0, poll_seconds: float = 0.1
) -> Settled:
    """Poll `/healthz` until the segment count has not changed for `quiet_seconds` and is at most
    the ceiling (when one is reported), or `limit_seconds` have passed."""
    started = time.perf_counter()
    last, since = -1, started
    while True:
        health, now = _health(client), time.perf_counter()
        if health["segments"] != last:
            last, since = health["segments"], now
        ceiling = segment_ceiling(health)
        within = ceiling is None or health["segments"] <= ceiling
        if within and now - since >= quiet_seconds:
            return Settled(health, now - started, True)
        if now - started >= limit_seconds:
            return Settled(health, now - started, False)
        time.sleep(poll_seconds)


def check_documents(
    client: httpx.Client,
    written: Sequence[Document],
    acknowledged: Collection[str],
    read_back: int = READ_BACK,
) -> dict[str, Any]:
    """Every acknowledged id looked for in `GET /documents`; `read_back` of them (a fixed random
    sample) read with `GET /documents/{id}` and compared with the text sent."""
    listing = client.get("/documents")
    listing.raise_for_status()
    present = {summary["id"] for summary in listing.json()["documents"]}
    lost = sorted(set(acknowledged) - present)
    sent = {document.id: document for document in written if document.id in acknowledged}
    sample = random.Random(0).sample(sorted(sent), min(read_back, len(sent)))
    wrong = []
    for document_id in sample:
        response = client.get(f"/documents/{document_id}")
        if response.status_code != 200 or response.json()["text"] != sent[document_id].text:
            wrong.append(document_id)
    return {"documents": len(present), "lost": lost, "read_back": len(sample), "wrong_text": wrong}


def run_summary(
    load: WriteLoad, documents: int, before: dict[str, Any], settled: Settled, check: dict[str, Any]
) -> dict[str, Any]:
    """The figures of one writer count, from what was measured (pure)."""
    ceilings = [sample.ceiling for sample in load.samples if sample.ceiling is not None]
    over = [s for s in load.samples if s.ceiling is not None and s.segments > s.ceiling]
    last_version = max(load.acknowledged.values(), key=generation, default=before["index_version"])
    step = max(1, -(-len(load.samples) // SERIES_POINTS))
    acknowledged = len(load.acknowledged)
    return {
        "writers": load.writers,
        "documents": documents,
        "sent": load.sent,
        "acknowledged": acknowledged,
        "failures": len(load.failures),
        "failure_samples": load.failures[:5],
        "seconds": round(load.seconds, 2),
        "documents_per_s": round(acknowledged / load.seconds, 1) if load.seconds else None,
        "write": latency_summary(load.latencies_ms),
        # Generations from the start to the last acknowledged write: merges' commits included.
        "commits": generation(last_version) - generation(before["index_version"]),
        "write_commits": len(set(load.acknowledged.values())),  # distinct versions writes named
        "segments": {
            "before": before["segments"],
            "peak": max((s.segments for s in load.samples), default=None),
            "final": settled.health["segments"],
            "settled": settled.settled,
            "settle_s": round(settled.seconds, 1),
            "series": [[round(s.seconds, 1), s.segments, s.ceiling] for s in load.samples[::step]],
        },
        "ceiling": {
            "reported": bool(ceilings) and len(ceilings) == len(load.samples),
            "min": min(ceilings, default=None),
            "max": max(ceilings, default=None),
            "final": segment_ceiling(settled.health),
        },
        "over_ceiling": len(over) if ceilings else None,
        "over_ceiling_samples": [[round(s.seconds, 1), s.segments, s.ceiling] for s in over[:5]],
        "samples": len(load.samples),
        "sampler_errors": len(load.sampler_errors),
        "documents_final": check["documents"],
        "lost": len(check["lost"]),
        "lost_samples": check["lost"][:10],
        "read_back": check["read_back"],
        "wrong_text": len(check["wrong_text"]),
    }


def phase_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The phase's figures from its runs' summaries: the most writers' documents/s against one
    writer's, the peak segment count, and whether the ceiling held and nothing was lost (pure)."""
    one = next((run for run in runs if run["writers"] == 1), None)
    most = max(runs, key=lambda run: run["writers"], default=None)
    reported = bool(runs) and all(run["ceiling"]["reported"] for run in runs)
    return {
        "runs": list(runs),
        "ratio": ratio(most["documents_per_s"], one["documents_per_s"]) if one and most else None,
        "segments_peak": max((run["segments"]["peak"] or 0 for run in runs), default=None),
        "ceiling_reported": reported,
        "over_ceiling": sum(run["over_ceiling"] for run in runs) if reported else None,
        "lost": sum(run["lost"] for run in runs),
        "failures": sum(run["failures"] for run in runs),
    }


def writers_phase(
    work: Path, count: int, clients: int, say: Callable[[str], None], settle_seconds: float = 120.0
) -> dict[str, Any]:
    """One writer, then `clients` writers, each POSTing the same `count` documents into a fresh
    empty index on a fresh server (see the module docstring)."""
    documents = small_documents(count, "wr")
    runs = []
    for writers in dict.fromkeys((1, clients)):
        root = work / "runs" / f"writers-{writers}"
        empty_index(root, HashingEmbedder(DIMENSION), IndexSettings())
        log = work / "runs" / f"writers-{writers}.log"
        with (
            running_app(root, HASHING_APP, log) as server,
            httpx.Client(base_url=server.url, timeout=REQUEST_SECONDS) as client,
        ):
            before = _health(client)
            say(f"  writers: {writers} writer(s), {count:,} documents")
            server_cpu, processes = server.cpu_seconds(), process_cpu()
            load = concurrent_writes(server.url, documents, writers)
            server_cores = (server.cpu_seconds() - server_cpu) / load.seconds if load.seconds else None
            others = others_cpu(processes, process_cpu(), load.seconds)
            say(f"  writers: {writers} writer(s): letting the merges settle (up to {settle_seconds:.0f} s)")
            settled = settle(client, settle_seconds, quiet_seconds=3.0)
            run = run_summary(
                load, count, before, settled, check_documents(client, documents, load.acknowledged)
            )
            run.update(
                server_cores=None if server_cores is None else round(server_cores, 2),
                other_cores=others["cores"],
                server_peak_mb=server.peak_memory_mb(),
            )
        runs.append(run)
        say(
            f"  writers: {writers} writer(s): {run['documents_per_s']} documents/s, write p50 "
            f"{run['write'].get('p50_ms')} ms, p99 {run['write'].get('p99_ms')} ms, segments peak "
            f"{run['segments']['peak']} final {run['segments']['final']}, ceiling "
            f"{run['ceiling']['max'] if run['ceiling']['reported'] else 'not reported'}, "
            f"{run['commits']} commits, {run['lost']} lost"
        )
    return {
        "embedder": f"hashing-fake, dimension {DIMENSION}",
        "documents": count,
        "sample_every_s": SAMPLE_SECONDS,
        **phase_summary(runs),
    }


def _health(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/healthz")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body
