"""Write latency: one ~3 KB article POSTed to a running server, over indexes of growing size.

For each size: the base index is built (or found cached, `eval.bench.bases`) with the fake
384-dimensional embedder, a hard-linked working copy is served by `eval.bench.hashing_app` (the
real app, background merges on as in production), a few warm-up articles are posted, then the
measured ones, one at a time with a short pause between them (so each write meets the server as
a lone write would, background merges included). The sizes are served in rounds (ascending,
then descending; each round a fresh copy and a share of the articles), and each round records how
much CPU other processes on the machine used while it posted. Each article's own embedding time is measured
in this process, before any server runs, with the same embedder on exactly the texts the writer
embeds (`build_segment_data` with a stopwatch around `embed_batch`), so latency less embedding is
what the rest of a write costs: chunking, BM25, writing and fsyncing the segment, the commit, and
opening the new reader.

Left out: concurrent writers (the engine serialises writes anyway) and the real model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from corpus import Document
from eval.bench.bases import cached_base_index, working_copy
from eval.bench.figures import latency_summary, ratio
from eval.bench.hashing_app import DIMENSION, HASHING_APP
from eval.bench.machine import others_cpu, process_cpu
from eval.bench.server import running_app
from eval.bench.synthetic import Article
from index.embedding import HashingEmbedder, Vectors
from index.settings import IndexSettings
from index.write.building import build_segment_data

PAUSE_SECONDS = 0.2  # between two writes: a write does not queue behind the one before


class StopwatchEmbedder:
    """An embedder that adds up the seconds spent in `embed_batch`."""

    def __init__(self, inner: HashingEmbedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self.seconds = 0.0

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        started = time.perf_counter()
        try:
            return self.inner.embed_batch(texts)
        finally:
            self.seconds += time.perf_counter() - started

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def embedding_ms(document: Document, settings: IndexSettings, repeats: int = 5) -> tuple[float, float]:
    """Median milliseconds of embedding `document` as the writer does, and of the whole
    `build_segment_data` (chunking, sentences, embedding, BM25 postings) around it."""
    embedding, whole = [], []
    for _ in range(repeats):
        timed = StopwatchEmbedder(HashingEmbedder(DIMENSION))
        started = time.perf_counter()
        build_segment_data([document], timed, settings)
        whole.append(1000 * (time.perf_counter() - started))
        embedding.append(1000 * timed.seconds)
    return statistics.median(embedding), statistics.median(whole)


def write_phase(
    work: Path,
    sizes: Sequence[int],
    documents_for: Callable[[int], list[Document]],
    articles_for: Callable[[int], tuple[list[Article], list[Article]]],
    say: Callable[[str], None],
    save: Callable[[], None],
    figures: dict[str, Any],
    rounds: int = 2,
) -> None:
    """Fill `figures["rows"]` with one row per size (see the module docstring); `articles_for(size)`
    gives (warm-up articles, measured articles), distinct for every size. The measured articles
    are shared out over `rounds` rounds; each round serves every size once from a fresh copy of
    its base index, in ascending order, then descending in the next round, so a stretch of load
    from elsewhere on the machine falls on every size rather than on one."""
    settings = IndexSettings()
    embedder = HashingEmbedder(DIMENSION)
    figures.update(
        embedder=f"{embedder.model_name}, dimension {DIMENSION}", pause_s=PAUSE_SECONDS, rounds=rounds
    )
    bases: dict[int, Path] = {}
    plans: dict[int, tuple[list[Article], list[Article], list[tuple[float, float]]]] = {}
    built: dict[int, float | None] = {}
    for size in sizes:
        documents = documents_for(size)
        say(f"  writes {size:,}: base index")
        bases[size], built[size] = cached_base_index(work, "base", documents, embedder, settings)
        del documents
        warm, measured = articles_for(size)
        plans[size] = (warm, measured, [embedding_ms(article.document, settings) for article in measured])
    served: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
    for number in range(rounds):
        for size in sorted(sizes, reverse=bool(number % 2)):
            warm, measured, _ = plans[size]
            share = measured[number::rounds]
            say(
                f"  writes {size:,}, round {number + 1}: {len(warm)} warm-up and {len(share)} measured articles"
            )
            copy = working_copy(bases[size], work / "runs" / f"writes-{size}")
            served[size].append(
                _serve_and_write(copy, warm, share, work / "runs" / f"writes-{size}-{number}.log")
            )
    rows: list[dict[str, Any]] = figures.setdefault("rows", [])
    for size in sizes:
        _, measured, own = plans[size]
        # Latencies back in article order, to pair each with its own embedding time.
        latencies = [0.0] * len(measured)
        for number, run in enumerate(served[size]):
            latencies[number::rounds] = run["latencies_ms"]
        less = [latency - embed for latency, (embed, _) in zip(latencies, own, strict=True)]
        first, last = served[size][0], served[size][-1]
        row = {
            "documents": size,
            "chunks": first["chunks"],
            "segments_before": first["segments_before"],
            "segments_after": max(run["segments_after"] for run in served[size]),
            "errors": sum(run["errors"] for run in served[size]),
            "base_build_s": None if built[size] is None else round(built[size] or 0.0, 1),
            "latency": latency_summary(latencies),
            "less_embedding": latency_summary(less),
            "embedding_ms_median": round(statistics.median(e for e, _ in own), 2),
            "segment_data_ms_median": round(statistics.median(w for _, w in own), 2),
            "article_chars_median": int(statistics.median(len(a.document.text) for a in measured)),
            "server_rss_mb_after": last["server_rss_mb_after"],
            "server_peak_mb": max(run["server_peak_mb"] or 0.0 for run in served[size]),
            "rounds": [
                {
                    "p50_ms": latency_summary(run["latencies_ms"]).get("p50_ms"),
                    "segments": [run["segments_before"], run["segments_after"]],
                    "startup_s": run["startup_s"],
                    "other_cores": run["others"]["cores"],
                }
                for run in served[size]
            ],
            "other_cores_max": max(run["others"]["cores"] or 0.0 for run in served[size]),
        }
        rows[:] = [r for r in rows if r["documents"] != size] + [row]
        say(
            f"  writes {size:,}: p50 {row['latency']['p50_ms']:.0f} ms, less embedding "
            f"{row['less_embedding']['p50_ms']:.0f} ms, p90 {row['latency']['p90_ms']:.0f} ms"
        )
    save()
    smallest = min(rows, key=lambda r: r["documents"])
    largest = max(rows, key=lambda r: r["documents"])
    figures["largest_to_smallest"] = {
        "sizes": [smallest["documents"], largest["documents"]],
        "median_ratio": ratio(largest["latency"]["p50_ms"], smallest["latency"]["p50_ms"]),
        "median_less_embedding_ratio": ratio(
            largest["less_embedding"]["p50_ms"], smallest["less_embedding"]["p50_ms"]
        ),
    }


def _serve_and_write(
    index_dir: Path, warm: Sequence[Article], measured: Sequence[Article], log_path: Path
) -> dict[str, Any]:
    with (
        running_app(index_dir, HASHING_APP, log_path) as server,
        httpx.Client(base_url=server.url, timeout=300.0) as client,
    ):
        before = client.get("/healthz").json()
        memory_before = server.memory_mb()
        for article in warm:
            _post(client, article)
            time.sleep(PAUSE_SECONDS)
        latencies, statuses = [], []
        processes, started_all = process_cpu(), time.perf_counter()
        for article in measured:
            started = time.perf_counter()
            statuses.append(_post(client, article))
            latencies.append(1000 * (time.perf_counter() - started))
            time.sleep(PAUSE_SECONDS)
        others = others_cpu(processes, process_cpu(), time.perf_counter() - started_all)
        after = client.get("/healthz").json()
        return {
            "startup_s": round(server.startup_seconds, 1),
            "chunks": before["chunks"],
            "segments_before": before["segments"],
            "segments_after": after["segments"],
            "errors": sum(status != "added" for status in statuses),
            "server_rss_mb_before": memory_before,
            "server_rss_mb_after": server.memory_mb(),
            "server_peak_mb": server.peak_memory_mb(),
            "latencies_ms": latencies,
            "others": others,
        }


def _post(client: httpx.Client, article: Article) -> str:
    response = client.post("/documents", json=article.payload())
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    return str(response.json()["status"])
