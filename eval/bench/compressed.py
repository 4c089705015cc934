"""Compressed vector indexes at 1M chunks: recall@10, latency and bytes per vector of IVF-PQ and
IVF-SQ8 beside the project's `IndexIVFFlat` (`python -m eval.bench --phase pq`).

Vectors and queries are the `large` phase's (`eval.bench.large.real_vectors`,
`eval.bench.scaling.synthetic_vectors`): real SciFact passage embeddings of the real model plus
Gaussian noise with their covariance, and up to 300 real SciFact question embeddings as queries.
The truth is exact search over all of them (`eval.bench.large._exact_top10`). Every index is one
IVF over all the chunks with the project's cells and probes at that size
(`index.storage.vectors.ivf_lists_for`, `ivf_probes_for`: 2048 cells and 32 probes at 1M), its
k-means trained on the same sample of ``lists x ivf_training_points_per_list`` vectors as
`index.storage.vectors` trains it:

* `IndexIVFFlat`: the project's index, float32 vectors (1,536 B each);
* `IndexIVFScalarQuantizer` QT_8bit: one byte per dimension (384 B), residuals to the cell;
* `IndexIVFPQ` with m = 48 and 96 sub-vectors of 8 bits (48 and 96 B), residuals to the cell.

Each compressed index is searched plain (the service's 100 candidates, top 10 kept) and with
exact re-ranking: R candidates from the index re-scored with the stored float32 vectors,
``score(q, v) = q . v`` (unit vectors: the cosine), top 10 kept (`rerank`), for R = 40 (4 x 10)
and R = 100. Re-ranking reads ``R x 1,536`` B of float32 vectors per query, from memory here;
a service would read them from its memory-mapped vector file (page cache or disk).

All kinds share the cells: the coarse k-means runs once, for IVFFlat (its *train* time), and the
others start from a copy of its trained centroids, so their *train* time is their codec's alone
(SQ8: per-dimension ranges; PQ: k-means of 256 centroids per sub-vector on the residuals).

Figures: recall@10 (`recall_at`), p50/p90 of one query at a time, bytes per vector in memory
``len(faiss.serialize_index(index)) / n`` (codes + 8 B ids + the cells' centroids,
``lists x 384 x 4 / n``), and training and add time, wall and CPU. Everything runs on one FAISS
thread: on this shared 2-core machine under load, two OpenMP threads trained PQ 2.8x slower
(wall) than one. Timings there are noisy; nothing asserts on them.

Left out: the index itself (the project builds only `IndexIVFFlat`: `index.storage.vectors`),
sentence vectors (float32 whatever the chunk index), several segments per commit (the `large`
phase), on-disk IVF (`OnDiskInvertedLists`) and vectors read back by row (`make_direct_map`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from corpus import Document
from eval.bench.compressed_report import pq_table
from eval.bench.figures import latency_summary
from eval.bench.large import CANDIDATES, _exact_top10, real_vectors
from eval.bench.scaling import synthetic_vectors
from index.embedding import Vectors
from index.settings import VectorIndexSettings
from index.storage.vectors import ivf_lists_for, ivf_probes_for

TOP = 10
RERANK_DEPTHS = (40, 100)  # 4 x TOP (a k_factor of 4), and the service's dense candidates
FLAT_QUERIES = 30  # exact search is ~100 ms a query at 1M: fewer are timed
# (name, FAISS factory of a trained-to-be IVF index over `lists` cells of `dimension`)
Factory = Callable[[faiss.Index, int, int], faiss.IndexIVF]
KINDS: tuple[tuple[str, Factory], ...] = (
    (
        "IVFFlat (current)",
        lambda quantizer, dimension, lists: faiss.IndexIVFFlat(
            quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT
        ),
    ),
    (
        "IVF-SQ8",
        lambda quantizer, dimension, lists: faiss.IndexIVFScalarQuantizer(
            quantizer, dimension, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        ),
    ),
    (
        "IVF-PQ48",
        lambda quantizer, dimension, lists: faiss.IndexIVFPQ(
            quantizer, dimension, lists, 48, 8, faiss.METRIC_INNER_PRODUCT
        ),
    ),
    (
        "IVF-PQ96",
        lambda quantizer, dimension, lists: faiss.IndexIVFPQ(
            quantizer, dimension, lists, 96, 8, faiss.METRIC_INNER_PRODUCT
        ),
    ),
)


def recall_at(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int = TOP) -> float:
    """Mean over queries of ``|found_q[:k] & truth_q[:k]| / k``: the share of each query's exact
    top k that the approximate top k holds, whatever the order (-1, "nothing found", never counts)."""
    if len(found) != len(truth) or not truth:
        raise ValueError("recall needs one found list per query, and at least one query")
    shares = [
        len({row for row in got[:k] if row >= 0} & set(expected[:k])) / k
        for got, expected in zip(found, truth, strict=True)
    ]
    return statistics.fmean(shares)


def rerank(query: Vectors, rows: npt.NDArray[np.int64], vectors: Vectors, k: int = TOP) -> list[int]:
    """The `k` of `rows` (-1: no candidate) whose stored vectors score highest against `query`,
    ``score(q, v) = q . v``, ties to the lower row: exact scores for an approximate shortlist."""
    candidates = rows[rows >= 0]
    scores = vectors[candidates] @ query.reshape(-1)
    order = np.lexsort((candidates, -scores))[:k]
    return [int(row) for row in candidates[order]]


def pq_phase(
    work: Path,
    corpus: Sequence[Document],
    questions: Sequence[str],
    chunks: int,
    queries: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Every kind of `KINDS` at `chunks` real+noise vectors, against exact search (module docstring)."""
    passages, asked = real_vectors(work, corpus, questions, 1500, say)
    asked = np.ascontiguousarray(asked[:queries], dtype=np.float32)
    say(f"  pq: {chunks:,} real+noise vectors and the exact top {TOP} of {len(asked)} questions")
    vectors = synthetic_vectors(passages, chunks, anchored=True)
    truth = _exact_top10(vectors, asked)
    settings = VectorIndexSettings()
    lists = ivf_lists_for(chunks)
    probes = ivf_probes_for(lists)
    sample_size = min(chunks, lists * settings.ivf_training_points_per_list)
    sample = vectors[np.sort(np.random.default_rng(0).choice(chunks, size=sample_size, replace=False))]
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        rows = [_flat_row(vectors, asked)]
        cells = faiss.IndexFlatIP(vectors.shape[1])  # trained by the first kind, copied for the others
        for name, factory in KINDS:
            say(f"  pq: {name}, {lists} cells, {probes} probes")
            index = factory(faiss.clone_index(cells) if cells.ntotal else cells, vectors.shape[1], lists)
            clock = _Clock()
            index.train(sample)
            train = clock.lap()
            index.add(vectors)
            add = clock.lap()
            built = {
                "train_s": train[0],
                "train_cpu_s": train[1],
                "add_s": add[0],
                "add_cpu_s": add[1],
                "bytes_per_vector": round(len(faiss.serialize_index(index)) / chunks, 1),
                "code_bytes": int(index.code_size),
            }
            index.nprobe = probes
            depths = (0,) if isinstance(index, faiss.IndexIVFFlat) else (0, *RERANK_DEPTHS)
            for depth in depths:
                rows.append({"index": name, **built, **_searched(index, vectors, asked, truth, depth)})
            del index
    finally:
        faiss.omp_set_num_threads(threads)
    figures = {
        "chunks": chunks,
        "queries": len(asked),
        "vectors": "real+noise (1500 SciFact abstracts, real model), SciFact questions",
        "dimension": int(vectors.shape[1]),
        "lists": lists,
        "probes": probes,
        "training_vectors": sample_size,
        "threads": 1,
        "candidates": CANDIDATES,
        "rows": rows,
    }
    say(pq_table(figures))
    return figures


def _searched(
    index: faiss.IndexIVF, vectors: Vectors, asked: Vectors, truth: list[list[int]], depth: int
) -> dict[str, Any]:
    """Recall@10 and latency of `index`, plain (`depth` 0: the service's candidates) or re-ranked
    from `depth` candidates; one query at a time on one thread."""
    wanted = depth or CANDIDATES

    def search(query: Vectors) -> list[int]:
        _, found = index.search(query.reshape(1, -1), wanted)
        return rerank(query, found[0], vectors) if depth else [int(row) for row in found[0][:TOP]]

    found, latencies = _timed(search, asked)
    return {
        "rerank": depth,
        "recall_at_10": round(recall_at(found, truth), 4),
        **_latency(latencies),
        "float32_read_per_query": depth * vectors.shape[1] * 4,
    }


def _flat_row(vectors: Vectors, asked: Vectors) -> dict[str, Any]:
    """Exact search (`faiss.knn`, no index copy) for reference: recall 1 by definition."""

    def search(query: Vectors) -> list[int]:
        _, found = faiss.knn(query.reshape(1, -1), vectors, CANDIDATES, metric=faiss.METRIC_INNER_PRODUCT)
        return [int(row) for row in found[0][:TOP]]

    _, latencies = _timed(search, asked[:FLAT_QUERIES])
    return {
        "index": "flat (exact)",
        "rerank": 0,
        "recall_at_10": 1.0,
        **_latency(latencies),
        "bytes_per_vector": float(vectors.shape[1] * 4),
        "code_bytes": int(vectors.shape[1] * 4),
        "float32_read_per_query": 0,
    }


class _Clock:
    """Wall and process CPU seconds since the last lap."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        seconds = (round(wall - self.wall, 1), round(cpu - self.cpu, 1))
        self.wall, self.cpu = wall, cpu
        return seconds


def _timed(search: Callable[[Vectors], list[int]], asked: Vectors) -> tuple[list[list[int]], list[float]]:
    """Each query searched once (after one warm-up): results and milliseconds."""
    search(asked[0])
    found, latencies = [], []
    for query in asked:
        started = time.perf_counter()
        found.append(search(query))
        latencies.append(1000 * (time.perf_counter() - started))
    return found, latencies


def _latency(latencies: list[float]) -> dict[str, Any]:
    summary = latency_summary(latencies)
    return {"p50_ms": summary["p50_ms"], "p90_ms": summary["p90_ms"], "timed_queries": summary["n"]}
