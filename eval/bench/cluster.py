"""The `cluster` phase (issue 22): a local Ray cluster's build and sharded serving against one process.

In one run, on the same documents (the bundled corpus plus the first N SciFact documents):

1. builds (`eval.bench.cluster_build`): `rag build` on this machine, then on a local Ray cluster
   (`eval.bench.cluster_serving.local_cluster`: a head and a worker node, separate processes)
   with `--cluster ADDRESS` and 1, then 2 embedding actors (`RAG_CLUSTER_EMBED_ACTORS`), each
   into a fresh index directory; then the sharded index (`--shards N --cluster ADDRESS`);
2. queries: the single-machine index served by `rag serve` (`eval.bench.server.running_server`)
   and the sharded one by `rag serve --cluster` (Ray Serve), side by side on free 127.0.0.1
   ports; `GET /search` (hybrid, k=5) at concurrency 1 and 32 with the load generator of
   `eval.bench.load`, in rounds, each round's two runs of a concurrency back to back (which side
   goes first alternating), pooled per side;
3. writes during ingest (`eval.bench.cluster_ingest`): the load of `eval.bench.ingest` (clients
   querying flat out, idle first, then while writers each POST a ~3 KB article a second) on
   each side;
4. a bulk ingest job: for each side, the same ~3 KB articles as one job (`POST
   /collections/bulk/jobs/ingest`, batches of `BULK_BATCH`) into a new collection, timed from
   the submission until it has succeeded (`eval.bench.jobs.one_job`);
5. writes during ingest again, both sides built and served with the fake embedder
   (`cluster_ingest.fake_embedder_ingest`): what a write waits for besides its embedding.

The cluster is stopped exactly (the pids it recorded), and both servers stopped, however the
phase ends. Left out: clusters of several machines, replicas, failures (tests/cluster covers
them), contextual sentence vectors, the ratios and report (`eval.bench.cluster_report`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from eval.bench.cluster_build import corpus_paths, timed_build
from eval.bench.cluster_ingest import fake_embedder_ingest, ingest_sides
from eval.bench.cluster_report import summarize
from eval.bench.cluster_serving import ClusterService, local_cluster, sharded_service
from eval.bench.ingest import Served
from eval.bench.jobs import one_job
from eval.bench.load import LoadFigures, pooled, run_load
from eval.bench.server import RunningServer, ServerError, running_server
from service.cluster import use_ray_defaults
from service.cluster.local import ClusterStartError

MODE = "hybrid"
# What a cluster that does not start, a failed `rag` command, a server that does not come up or
# a refused request raise: reported in the figures; anything else is a fault of the benchmark.
PHASE_FAILURES = (
    ClusterStartError,
    ServerError,
    RuntimeError,
    OSError,
    httpx.HTTPError,
    subprocess.SubprocessError,
)
SEED_QUESTIONS = Path(__file__).resolve().parents[2] / "eval" / "sets" / "seed-articles.jsonl"
BULK_COLLECTION = "bulk"
BULK_BATCH = 50


@dataclass(frozen=True)
class ClusterOptions:
    seed: Path  # the bundled corpus's directory
    scifact: Path
    scifact_documents: int  # the first N by id; 0: all
    shards: int
    rounds: int
    c1_requests: int
    c32_requests: int
    clients: int  # querying clients during ingest
    writers: int
    idle_seconds: float
    ingest_seconds: float
    bulk_documents: int  # articles in the bulk job


def cluster_phase(
    work: Path,
    options: ClusterOptions,
    questions: Sequence[str],
    sentences: Sequence[str],
    figures: dict[str, Any],
    save: Callable[[], None],
    say: Callable[[str], None],
) -> None:
    """Run the phase, filling `figures` (saved after each step) and finally its summary. A
    cluster that does not start, a build, deployment or server that fails ends the phase with
    its error in `figures["error"]` and the report shows what was measured before it."""
    use_ray_defaults()
    scratch = work / "cluster"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    figures.update(seed=str(options.seed), shards=options.shards, builds={})
    try:
        _measure(scratch, options, questions, sentences, figures, save, say)
    except PHASE_FAILURES as error:
        figures["error"] = f"{type(error).__name__}: {error}"[-1500:]
        say(f"  cluster phase failed: {figures['error']}")
    figures["summary"] = summarize(figures)


def _measure(
    scratch: Path,
    options: ClusterOptions,
    questions: Sequence[str],
    sentences: Sequence[str],
    figures: dict[str, Any],
    save: Callable[[], None],
    say: Callable[[str], None],
) -> None:
    with corpus_paths(options.seed, options.scifact, options.scifact_documents) as (paths, documents):
        figures.update(documents=documents, scifact_documents=documents - _count(options.seed))
        say(f"  build: `rag build` here ({documents} documents)")
        figures["builds"]["single"] = timed_build(paths, scratch / "single", scratch / "build-single.log")
        save()
        say("  cluster: start a head and a worker node")
        started = time.perf_counter()
        with local_cluster() as cluster:
            figures["cluster_start_s"] = round(time.perf_counter() - started, 1)
            figures["cluster_nodes"] = {"address": cluster.address, "nodes": len(cluster.nodes)}
            for actors in (1, 2):
                say(f"  build: `rag build --cluster`, {actors} embedding actor(s)")
                figures["builds"][f"cluster-{actors}"] = timed_build(
                    paths,
                    scratch / f"cluster-{actors}",
                    scratch / f"build-cluster-{actors}.log",
                    ["--cluster", cluster.address],
                    {"RAG_CLUSTER_EMBED_ACTORS": str(actors)},
                )
                save()
            say(f"  build: `rag build --shards {options.shards} --cluster`")
            figures["builds"]["sharded"] = timed_build(
                paths,
                scratch / "sharded",
                scratch / "build-sharded.log",
                ["--shards", str(options.shards), "--cluster", cluster.address],
                shards=options.shards,
            )
            save()
            say("  serve: `rag serve` and `rag serve --cluster`")
            with (
                running_server(
                    scratch / "single",
                    questions[0],
                    settings={"RAG_COLLECTIONS_DIR": str(scratch / "single-collections")},
                ) as single,
                sharded_service(
                    cluster,
                    scratch / "sharded",
                    questions[0],
                    scratch / "serve-sharded.log",
                    {"RAG_COLLECTIONS_DIR": str(scratch / "sharded-collections")},
                ) as sharded,
            ):
                figures["servers"] = {
                    "single": {
                        "startup_s": round(single.startup_seconds, 2),
                        "memory_mb": single.memory_mb(),
                    },
                    "sharded": {
                        "startup_s": round(sharded.startup_seconds, 2),
                        "memory_mb": sharded.memory_mb(),
                    },
                }
                figures["queries"] = _queries(single, sharded, questions, options, say)
                save()
                served: dict[str, Served] = {"single": single, "sharded": sharded}
                figures["ingest"] = ingest_sides(served, questions, sentences, options, say)
                save()
                figures["bulk_job"] = _bulk_job(single, sharded, sentences, options, say)
                figures["servers"]["single"]["peak_memory_mb"] = single.peak_memory_mb()
                save()
            figures["ingest_fake"] = fake_embedder_ingest(
                scratch, paths, cluster, questions, sentences, options, say
            )
            save()


def run_cluster(
    arguments: Any,
    questions: Sequence[str],
    sentences: Sequence[str],
    figures: dict[str, Any],
    save: Callable[[], None],
    say: Callable[[str], None],
) -> None:
    """The cluster phase with its options (`--seed`, `--cluster-*`), full or quick; SciFact's
    questions after the seed set's, so both parts of the corpus are asked about."""
    from eval.bench.phases import option

    seed_lines = SEED_QUESTIONS.read_text("utf-8").splitlines()
    seed_questions = [json.loads(line)["question"] for line in seed_lines if line.strip()]
    options = ClusterOptions(
        seed=arguments.seed.resolve(),
        scifact=arguments.scifact.resolve(),
        scifact_documents=option(arguments, "cluster_docs"),
        shards=option(arguments, "cluster_shards"),
        rounds=option(arguments, "cluster_rounds"),
        c1_requests=option(arguments, "cluster_c1_requests"),
        c32_requests=option(arguments, "cluster_c32_requests"),
        clients=option(arguments, "cluster_clients"),
        writers=option(arguments, "cluster_writers"),
        idle_seconds=float(option(arguments, "cluster_idle_seconds")),
        ingest_seconds=float(option(arguments, "cluster_ingest_seconds")),
        bulk_documents=option(arguments, "cluster_bulk_documents"),
    )
    asked = list(dict.fromkeys([*seed_questions, *questions]))
    cluster_phase(arguments.work_dir, options, asked, sentences, figures, save, say)


def _count(seed: Path) -> int:
    from corpus import load_corpus

    return len(load_corpus([seed]))


def _queries(
    single: RunningServer,
    sharded: ClusterService,
    questions: Sequence[str],
    options: ClusterOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    servers: dict[str, RunningServer | ClusterService] = {"single": single, "sharded": sharded}
    requests = {1: options.c1_requests, 32: options.c32_requests}
    runs: dict[str, dict[int, list[LoadFigures]]] = {side: {c: [] for c in requests} for side in servers}
    cluster_cpu, cluster_seconds = 0.0, 0.0
    for number in range(options.rounds):
        start = number * max(requests.values()) % len(questions)
        rotated = [*questions[start:], *questions[:start]]
        for step, (concurrency, count) in enumerate(requests.items()):
            order = list(servers) if (number + step) % 2 == 0 else list(servers)[::-1]
            for side in order:
                say(f"  round {number + 1} of {options.rounds}: {side}, c={concurrency}")
                before = sharded.cpu_seconds()
                server = servers[side]
                run = run_load(server.url, rotated, concurrency, count, MODE, server.cpu_seconds, get=True)
                runs[side][concurrency].append(run)
                if side == "single":  # what the idle cluster costs the single-process side
                    cluster_cpu += sharded.cpu_seconds() - before
                    cluster_seconds += run.seconds
    return {
        "mode": MODE,
        "rounds": options.rounds,
        "requests": {f"c{c}": count for c, count in requests.items()},
        "questions": len(questions),
        "runs": {side: {f"c{c}": pooled(r[c]).as_dict() for c in requests} for side, r in runs.items()},
        "cluster_cores_during_single": round(cluster_cpu / cluster_seconds, 2) if cluster_seconds else None,
    }


def _bulk_job(
    single: RunningServer,
    sharded: ClusterService,
    sentences: Sequence[str],
    options: ClusterOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The same articles as one job on each side, into a new collection."""
    from eval.bench.synthetic import articles

    made = articles(sentences, options.bulk_documents, "bulk")
    figures: dict[str, Any] = {"documents": len(made), "batch_size": BULK_BATCH}
    servers: dict[str, Served] = {"single": single, "sharded": sharded}
    for side, server in servers.items():
        say(f"  bulk job, {side}: {len(made)} articles as one job")
        figures[side] = one_job(server.url, made, f"/collections/{BULK_COLLECTION}", BULK_BATCH)
    return figures
