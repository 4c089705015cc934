"""Large indexes: hybrid query latency at 1M chunks in 10 segments, and dense recall@10 by probes.

Two measurements, both at a million chunks:

* latency: the footprint phase's synthetic index (`eval.bench.footprint.write_synthetic_index`:
  segments of 100k chunks, each an IVF segment, random unit vectors, BM25 postings of real
  SciFact sentences), kept under the work directory and re-used by later runs; a fresh process
  (`eval.bench.footprint_probe`) opens it and times `Retriever.search` (hybrid, k=5, the
  question vector given: no encoding), with its own CPU time beside the wall time, since the
  machine may be shared. With `--compare-ref REF` the same probe runs with the code at REF (a
  temporary git worktree) on the same index, current code and REF alternating, `rounds` each.
* recall: random vectors are the worst case for IVF, so recall is measured apart, on
  real+noise vectors (`eval.bench.scaling.synthetic_vectors` around real SciFact passage
  embeddings of the real model) split into 10 IVF segments of 100k built as a segment builds
  its IVF index, queried with 300 real SciFact question embeddings: recall@10 of the segments'
  merged top 10 against exact search over the million, for several probes per segment, against
  one IVF index over the million at its own settings. One thread, one query at a time.

Left out: encoding the question, HTTP, and layouts other than 10 x 100k for the latency (one
1M segment needs ~21 GiB to force-merge here; docs/performance.md estimates the rest).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from corpus import Document
from eval.bench.build_compare import worktree
from eval.bench.figures import latency_summary
from eval.bench.footprint import SentencePool, write_synthetic_index
from eval.bench.machine import others_cpu, process_cpu
from eval.bench.scaling import synthetic_vectors
from index.embedding import SentenceTransformerEmbedder, Vectors
from index.settings import VectorIndexSettings
from index.storage.vectors import SEGMENT_PROBES, build_vector_index, ivf_lists_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPLETE = "BENCH-COMPLETE"
RECALL_PROBES = (24, 28, 32, 48)
CANDIDATES = 100  # what the service asks each signal for (RetrievalOptions.candidates)


def large_phase(
    work: Path,
    pool: SentencePool,
    corpus: Sequence[Document],
    questions: Sequence[str],
    scifact: Path,
    chunks: int,
    queries: int,
    rounds: int,
    reference: str | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    figures: dict[str, Any] = {"chunks": chunks, "queries": queries}
    root = work / "bases" / f"large-{chunks}"
    if not (root / COMPLETE).is_file():
        say(f"  large: writing {chunks:,} synthetic chunks")
        seconds = write_synthetic_index(root, pool, chunks, say)
        (root / COMPLETE).write_text(f"{chunks} chunks written in {seconds:.1f} s\n", "utf-8")
    runs: dict[str, list[dict[str, Any]]] = {"current": []}
    if reference:
        with worktree(reference) as code:
            runs["reference"] = []
            for number in range(rounds):
                say(f"  large: probe round {number + 1}/{rounds}, current code then {reference}")
                runs["current"].append(_probe(PROJECT_ROOT, root, scifact, queries))
                runs["reference"].append(_probe(code, root, scifact, queries))
        figures["reference"] = reference
    else:
        for number in range(rounds):
            say(f"  large: probe round {number + 1}/{rounds}")
            runs["current"].append(_probe(PROJECT_ROOT, root, scifact, queries))
    figures["latency"] = {
        name: {
            "runs": probes,
            "p50_ms_median_of_runs": round(statistics.median(p["query"]["p50_ms"] for p in probes), 2),
            "warm_p50_ms_median_of_runs": round(
                statistics.median(p["query_warm"]["p50_ms"] for p in probes), 2
            ),
        }
        for name, probes in runs.items()
    }
    say("  large: recall@10 of 10 x 100k IVF segments by probes (real+noise vectors)")
    figures["recall"] = segment_recall(work, corpus, questions, say)
    return figures


def _probe(code: Path, root: Path, scifact: Path, queries: int) -> dict[str, Any]:
    """One fresh process of this checkout's `eval.bench.footprint_probe` with the index code in
    `code` on `root`: the first `queries` questions timed as they map the index into the
    process, then `queries` more (`query_warm`), both sides measured by the same probe."""
    command = [
        sys.executable,
        "-c",  # runs the file as `-m` would, `code` first on the path
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
        str(PROJECT_ROOT / "eval" / "bench" / "footprint_probe.py"),
        str(root.resolve()),  # absolute: the probe runs in `code`
        str(scifact.resolve()),
        str(queries),
        str(queries),
    ]
    processes, started = process_cpu(), time.perf_counter()
    done = subprocess.run(
        command, cwd=code, env=_environment(code), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe with the code in {code} failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["other_cores"] = others_cpu(processes, process_cpu(), time.perf_counter() - started)["cores"]
    kept = ("query", "query_cpu", "query_warm", "query_warm_cpu", "open_s", "other_cores")
    return {key: figures[key] for key in kept if key in figures}


def _environment(code: Path) -> dict[str, str]:
    """This environment with `code` first on the path (so `import index` is that code)."""
    return {**os.environ, "PYTHONPATH": str(code)}


def real_vectors(
    work: Path,
    corpus: Sequence[Document],
    questions: Sequence[str],
    documents: int,
    say: Callable[[str], None],
) -> tuple[Vectors, Vectors]:
    """Real-model embeddings of the first `documents` SciFact abstracts (title, then text) and of
    the first 300 questions, cached under `work/large` (the model is slow on 2 shared cores)."""
    embedder = SentenceTransformerEmbedder()
    cache = work / "large" / f"real-{embedder.model_name.replace('/', '_')}-{documents}.npz"
    if cache.is_file():
        stored = np.load(cache)
        return stored["passages"], stored["questions"]
    say(f"  large: embedding {documents} SciFact abstracts and 300 questions with the real model")
    passages = embedder.embed_batch([f"{d.title}\n{d.text}" for d in corpus[:documents]])
    asked = embedder.embed_batch(list(questions[:300]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, passages=passages, questions=asked)
    return passages, asked


def segment_recall(
    work: Path,
    corpus: Sequence[Document],
    questions: Sequence[str],
    say: Callable[[str], None],
    segments: int = 10,
    size: int = 100_000,
) -> dict[str, Any]:
    """Recall@10 and p50 of the merged top 10 of `segments` IVF segments of `size` vectors each,
    by probes per segment, and of one IVF index over them all (module docstring)."""
    passages, asked = real_vectors(work, corpus, questions, 1500, say)
    vectors = synthetic_vectors(passages, segments * size, anchored=True)
    truth = _exact_top10(vectors, asked)
    parts = [
        build_vector_index(vectors[begin : begin + size], VectorIndexSettings(approximate_threshold=0))
        for begin in range(0, len(vectors), size)
    ]
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        rows = []
        for probes in RECALL_PROBES:
            recall, p50 = _recall(parts, size, asked, truth, probes)
            rows.append(
                {"layout": f"{segments} x {size:,}", "probes": probes, "recall_at_10": recall, "p50_ms": p50}
            )
        del parts
        faiss.omp_set_num_threads(threads)
        whole = build_vector_index(vectors, VectorIndexSettings(approximate_threshold=0))
        faiss.omp_set_num_threads(1)
        probes = int(faiss.extract_index_ivf(whole).nprobe)
        recall, p50 = _recall([whole], len(vectors), asked, truth, probes)
        rows.append(
            {"layout": f"1 x {len(vectors):,}", "probes": probes, "recall_at_10": recall, "p50_ms": p50}
        )
    finally:
        faiss.omp_set_num_threads(threads)
    return {
        "vectors": "real+noise (1500 SciFact abstracts, real model), 300 SciFact questions",
        "lists_per_segment": ivf_lists_for(size),
        "segment_probes_setting": SEGMENT_PROBES,
        "rows": rows,
    }


def _exact_top10(vectors: Vectors, queries: Vectors, block: int = 50) -> list[list[int]]:
    """Exact top 10 of each query (ties to the lower row), in blocks to bound memory."""
    found: list[list[int]] = []
    for begin in range(0, len(queries), block):
        cosines = queries[begin : begin + block] @ vectors.T
        candidates = np.argpartition(-cosines, 10, axis=1)[:, :10]
        for row, chosen in zip(cosines, candidates, strict=True):
            found.append(chosen[np.lexsort((chosen, -row[chosen]))].tolist())
    return found


def _recall(
    parts: list[faiss.Index], size: int, queries: Vectors, truth: list[list[int]], probes: int
) -> tuple[float, float]:
    parameters = faiss.SearchParametersIVF(nprobe=probes)  # type: ignore[call-arg]
    recalls, latencies = [], []
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        rows, scores = [], []
        for number, part in enumerate(parts):
            found_scores, found_rows = part.search(query.reshape(1, -1), CANDIDATES, params=parameters)
            rows.append(found_rows[0] + number * size)
            scores.append(found_scores[0])
        all_rows, all_scores = np.concatenate(rows), np.concatenate(scores)
        best = all_rows[np.lexsort((all_rows, -all_scores))[:10]]
        latencies.append(1000 * (time.perf_counter() - started))
        recalls.append(len(set(best.tolist()) & set(expected)) / 10)
    return round(statistics.fmean(recalls), 4), latency_summary(latencies)["p50_ms"]
