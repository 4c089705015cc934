"""The cluster phase's writes during ingest: both services under the same query and write load.

Two runs of `eval.bench.ingest`'s load (closed-loop clients querying flat out, idle first, then
while writers each POST a ~3 KB article a second), each on the single-process server and the
sharded service side by side:

* `ingest_sides`, over the phase's servers, which embed with the real model: a write's latency
  is then mostly its own embedding (a ~3 KB article is ~8 chunks and their sentences);
* `fake_embedder_ingest`, over a second pair built and served with `RAG_EMBEDDER=hashing` (the
  bag-of-words fake, 64 dimensions), the same documents: what a write waits for besides its
  embedding (queries holding the CPU and the GIL, the commit, merges). This is how the segmented
  index's `ingest` phase measured the single-process write under load (p50 536 ms, with a
  384-dimension fake) that issue 22's target (150 ms) was set against.

Each side first gets one probe `POST /documents`; a side that refuses it is reported with the
refusal instead of figures. Left out: reading the acknowledged articles back (the `ingest` phase
does), deletes, several collections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from eval.bench.cluster_build import timed_build
from eval.bench.cluster_serving import sharded_service, write_probe
from eval.bench.ingest import WARM_UP_SECONDS, Served, ingest_load
from eval.bench.server import running_server
from eval.bench.synthetic import Article, articles
from service.cluster.local import LocalCluster

FAKE_EMBEDDER = {"RAG_EMBEDDER": "hashing"}


class IngestOptions(Protocol):
    """What the load takes of the phase's options (`cluster.ClusterOptions`)."""

    @property
    def shards(self) -> int: ...
    @property
    def clients(self) -> int: ...  # querying clients
    @property
    def writers(self) -> int: ...
    @property
    def idle_seconds(self) -> float: ...
    @property
    def ingest_seconds(self) -> float: ...


def ingest_sides(
    servers: dict[str, Served],
    questions: Sequence[str],
    sentences: Sequence[str],
    options: IngestOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The load on each of `servers` in turn, with articles of its own (what the servers embed
    with is the key the phase files the figures under: `cluster_report.INGEST_RUNS`)."""
    count = int(options.ingest_seconds) * options.writers + 30
    figures: dict[str, Any] = {
        "clients": options.clients,
        "writers": options.writers,
        "idle_seconds": options.idle_seconds,
        "ingest_seconds": options.ingest_seconds,
    }
    for side, server in servers.items():
        made = articles(sentences, count + 1, f"cl{side}")  # each server its own index
        figures[side] = _ingest_side(server, side, questions, made[0], made[1:], options, say)
    return figures


def fake_embedder_ingest(
    scratch: Path,
    paths: Sequence[Path],
    cluster: LocalCluster,
    questions: Sequence[str],
    sentences: Sequence[str],
    options: IngestOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Both services over the phase's documents built and served with the fake embedder, under
    the ingest load; their builds' figures beside."""
    say("  ingest, fake embedder: `rag build` and `rag build --shards` with RAG_EMBEDDER=hashing")
    single_index, sharded_index = scratch / "single-fake", scratch / "sharded-fake"
    builds = {
        "single": timed_build(paths, single_index, scratch / "build-single-fake.log", (), FAKE_EMBEDDER),
        "sharded": timed_build(
            paths,
            sharded_index,
            scratch / "build-sharded-fake.log",
            ["--shards", str(options.shards)],
            FAKE_EMBEDDER,
            shards=options.shards,
        ),
    }
    with _fake_servers(scratch, cluster, single_index, sharded_index, questions[0]) as servers:
        figures = ingest_sides(servers, questions, sentences, options, say)
    return {**figures, "builds": builds}


@contextmanager
def _fake_servers(
    scratch: Path, cluster: LocalCluster, single_index: Path, sharded_index: Path, question: str
) -> Iterator[dict[str, Served]]:
    def settings(side: str) -> dict[str, str]:
        return {**FAKE_EMBEDDER, "RAG_COLLECTIONS_DIR": str(scratch / f"{side}-fake-collections")}

    with (
        running_server(single_index, question, settings=settings("single")) as single,
        sharded_service(
            cluster, sharded_index, question, scratch / "serve-sharded-fake.log", settings("sharded")
        ) as sharded,
    ):
        yield {"single": single, "sharded": sharded}


def _ingest_side(
    server: Served,
    side: str,
    questions: Sequence[str],
    probe_article: Article,
    stream: Sequence[Article],
    options: IngestOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    probe = write_probe(server.url, probe_article)
    if probe["status"] != 200:
        say(f"  ingest, {side}: the probe write answered {probe['status']}; not measured")
        return {"probe": probe}
    say(f"  ingest, {side}: warm-up, then {options.idle_seconds:.0f} s idle, {options.clients} clients")
    clients = options.clients
    asyncio.run(ingest_load(server, questions, clients, WARM_UP_SECONDS, []))
    idle = asyncio.run(ingest_load(server, questions, clients, options.idle_seconds, []))
    say(
        f"  ingest, {side}: {options.writers} writer(s), an article a second each, {options.ingest_seconds:.0f} s"
    )
    busy = asyncio.run(
        ingest_load(server, questions, clients, options.ingest_seconds, stream, writers=options.writers)
    )
    return {
        "probe": probe,
        "idle": idle.summary(),
        "ingest": busy.summary(),
        "acknowledged": len(busy.acknowledged),
    }
