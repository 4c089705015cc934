"""`python -m eval.bench.footprint_probe INDEX SCIFACT QUERIES [WARM]`: the memory an open index costs.

Run in a fresh process by `eval.bench.footprint`, so nothing else the benchmark holds counts:
reads the resident set after every import (before opening), after `IndexReader.open` (checksums
verified, files mapped) and a `Retriever` on it, and after QUERIES hybrid searches (k=5; SciFact
questions as the BM25 text, random unit vectors as the dense query, so dense candidates land
anywhere in the index), then VmHWM. Each reading splits VmRSS into RssAnon (the process's own
memory: what it needs whatever the page cache holds) and RssFile (pages of the memory-mapped
index files: page cache, shared and reclaimable; the kernel maps neighbouring cached pages on each
fault, so on a freshly written index a few random reads map much of a file).
With WARM, the next WARM questions are timed too, after the first QUERIES (`query_warm`): a
process that has answered questions before, as a running server has, where the first QUERIES
also map the index's pages into a fresh process.
Prints one JSON line. Out of scope: HTTP and the model.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from eval.bench.figures import latency_summary
from eval.bench.synthetic import scifact_questions
from index.embedding import HashingEmbedder
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.storage.store import IndexStore


def status_kb(field: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def resident() -> dict[str, int | None]:
    return {"rss_kb": status_kb("VmRSS"), "anon_kb": status_kb("RssAnon"), "file_kb": status_kb("RssFile")}


def main() -> None:
    root, scifact, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    warm = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    asked = scifact_questions(scifact)[: count + warm]
    rng = np.random.default_rng(1)
    before = resident()
    started = time.perf_counter()
    reader = IndexReader.open(IndexStore(root))
    vectors = rng.standard_normal((len(asked), reader.dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    retriever = Retriever(reader, HashingEmbedder(reader.dimension), RetrievalOptions())
    open_seconds = time.perf_counter() - started
    after_open = resident()
    latencies, cpu = timed_searches(retriever, asked[:count], vectors[:count])
    figures = {
        "before": before,
        "after_open": after_open,
        "after_queries": resident(),
        "hwm_kb": status_kb("VmHWM"),
        "open_s": round(open_seconds, 2),
        "queries": count,
        "query": latency_summary(latencies),
        "query_cpu": latency_summary(cpu),
    }
    if warm:
        latencies, cpu = timed_searches(retriever, asked[count:], vectors[count:])
        figures["query_warm"] = latency_summary(latencies)
        figures["query_warm_cpu"] = latency_summary(cpu)
    sys.stdout.write(json.dumps(figures) + "\n")


def timed_searches(
    retriever: Retriever, questions: Sequence[str], vectors: npt.NDArray[np.float32]
) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of a hybrid search (k=5) of each question with its vector."""
    latencies, cpu = [], []
    for question, vector in zip(questions, vectors, strict=True):
        began, used = time.perf_counter(), time.process_time()
        retriever.search(question, k=5, mode=Mode.HYBRID, query_vector=vector)
        latencies.append(1000 * (time.perf_counter() - began))
        # This process's CPU time, every thread of it (a large index's searches run side by
        # side: `index.search.parallel`): what a query costs whatever else the machine runs.
        cpu.append(1000 * (time.process_time() - used))
    return latencies, cpu


if __name__ == "__main__":
    main()
