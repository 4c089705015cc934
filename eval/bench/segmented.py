"""Query cost of segments: the same documents as 10 segments and as one force-merged segment.

SciFact (or its first N documents) is built with the fake 384-dimensional embedder by 10
`IndexWriter.upsert` calls of about a tenth of the documents each, under a merge policy that never
merges, so the index holds exactly 10 segments; a copy of it is force-merged into one. Both are
opened in this process and queried with `Retriever.search` (hybrid, k=5) on SciFact questions,
their vectors computed beforehand so only the search is timed. A warm-up pass runs over every
question on both first; then each question is asked of both, the order alternating from one
question to the next, so drift in the machine's load falls on both alike. All of it twice: with
BLAS's default threads (what the service runs with) and with BLAS held to one thread, because
on this machine OpenBLAS's threading of the small matrix products a query makes costs more than
everything else in it (~8 ms against ~2 ms per query) and hides what segments cost.

Left out: HTTP (what a request adds is the same for both) and the real model.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-untyped]

from corpus import Document
from eval.bench.figures import latency_summary, ratio
from eval.bench.hashing_app import DIMENSION
from index.embedding import HashingEmbedder, Vectors
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.merging import TieredMergePolicy
from index.write.writer import IndexWriter

SEGMENTS = 10
BLAS_THREADS = max(
    (pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=None
)
NEVER_MERGE = TieredMergePolicy(segments_per_tier=1_000)


def segments_phase(
    work: Path, documents: Sequence[Document], questions: Sequence[str], say: Callable[[str], None]
) -> dict[str, Any]:
    embedder = HashingEmbedder(DIMENSION)
    settings = IndexSettings()
    split, merged = work / "runs" / "segments-10", work / "runs" / "segments-1"
    shutil.rmtree(split, ignore_errors=True)
    shutil.rmtree(merged, ignore_errors=True)
    say(f"  segments: {len(documents):,} documents in {SEGMENTS} upserts")
    writer = IndexWriter(IndexStore(split), embedder, settings=settings, merge_policy=NEVER_MERGE)
    share = -(-len(documents) // SEGMENTS)
    for begin in range(0, len(documents), share):
        writer.upsert(documents[begin : begin + share])
    shutil.copytree(split, merged, ignore=shutil.ignore_patterns(".write.lock"))
    say("  segments: force-merging the copy")
    started = time.perf_counter()
    IndexWriter(IndexStore(merged), embedder, settings=settings).merge(force=True)
    merge_seconds = time.perf_counter() - started
    readers = {
        "10 segments": IndexReader.open(IndexStore(split)),
        "1 segment": IndexReader.open(IndexStore(merged)),
    }
    retrievers = {name: Retriever(reader, embedder, RetrievalOptions()) for name, reader in readers.items()}
    vectors = embedder.embed_batch(list(questions))
    runs = {}
    for threads in (None, 1):
        label = "default" if threads is None else str(threads)
        say(
            f"  segments: BLAS threads {label}: warm-up, then {len(questions)} questions on both, alternating"
        )
        with threadpool_limits(limits=threads, user_api="blas"):
            latencies = _alternating(retrievers, questions, vectors)
        rows = {
            name: {
                "segments": len(readers[name].segments),
                "documents": readers[name].document_count,
                "chunks": readers[name].chunk_count,
                **latency_summary(latencies[name]),
            }
            for name in retrievers
        }
        runs[label] = {
            "indexes": rows,
            "p50_ratio": ratio(rows["10 segments"]["p50_ms"], rows["1 segment"]["p50_ms"]),
            "p99_ratio": ratio(rows["10 segments"]["p99_ms"], rows["1 segment"]["p99_ms"]),
        }
    return {
        "embedder": f"hashing-fake, dimension {DIMENSION}",
        "queries": len(questions),
        "merge_s": round(merge_seconds, 2),
        "blas_threads_default": BLAS_THREADS,
        # The service's own setting (BLAS's default threads) first, then BLAS on one thread.
        "runs": runs,
    }


def _alternating(
    retrievers: dict[str, Retriever], questions: Sequence[str], vectors: Vectors
) -> dict[str, list[float]]:
    """A warm-up pass on each, then each question on both, which goes first alternating."""
    names = list(retrievers)
    for name in names:
        for question, vector in zip(questions, vectors, strict=True):
            retrievers[name].search(question, k=5, mode=Mode.HYBRID, query_vector=vector)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for number, (question, vector) in enumerate(zip(questions, vectors, strict=True)):
        for name in names if number % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            retrievers[name].search(question, k=5, mode=Mode.HYBRID, query_vector=vector)
            latencies[name].append(1000 * (time.perf_counter() - started))
    return latencies
