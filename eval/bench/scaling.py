"""Search cost as the index grows: exact vs approximate FAISS, and BM25, at 10k to 1M chunks.

Real corpora of a million chunks do not fit the benchmark's time, so the data is synthetic but
shaped like the real thing:

* vectors are real passage embeddings (SciFact chunks) plus Gaussian noise with the covariance
  of those embeddings, normalised (a smoothed bootstrap: the topical clusters of real text
  survive, each real passage becomes a neighbourhood of similar ones); queries are real
  question embeddings. The approximate index is also measured on a plain Gaussian with the same
  mean and covariance ("gaussian" rows), which has no clusters at all: a worst case for IVF;
* BM25 passages are real SciFact sentences (already stemmed) strung together to the length of
  a real chunk, so vocabulary and term statistics are those of real text.

Each search is one query at a time, asking for as many candidates as the service does.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import faiss
import numpy as np

from index.embedding import Vectors
from index.search.options import RetrievalOptions
from index.settings import VectorIndexSettings
from index.storage.postings import CollectionStatistics, Postings, SegmentPostings, positive_top, score
from index.storage.vectors import build_vector_index, search_vectors, vector_index_kind
from index.text.analysis import terms


def synthetic_vectors(
    real: Vectors, count: int, anchored: bool = True, seed: int = 0, block: int = 100_000
) -> Vectors:
    """`count` unit vectors: noise with the covariance of `real`, added to a random real vector
    (`anchored`) or to the mean of `real` (a plain Gaussian fitted to it)."""
    rng = np.random.default_rng(seed)
    mean = real.mean(axis=0)
    _, singular, axes = np.linalg.svd(real - mean, full_matrices=False)
    transform = (axes.T * (singular / np.sqrt(max(len(real) - 1, 1)))).T.astype(np.float32)
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    for begin in range(0, count, block):
        size = min(block, count - begin)
        centre = real[rng.integers(0, len(real), size)] if anchored else mean
        sample = rng.standard_normal((size, len(singular)), dtype=np.float32) @ transform + centre
        out[begin : begin + size] = sample / np.linalg.norm(sample, axis=1, keepdims=True)
    return out


def _latencies_ms(search: Callable[[int], object], queries: int) -> list[float]:
    search(0)  # warm-up
    seconds = []
    for row in range(queries):
        started = time.perf_counter()
        search(row)
        seconds.append(1000 * (time.perf_counter() - started))
    return seconds


def _summary(latencies: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
    }


def vector_scaling(
    real: Vectors,
    queries: Vectors,
    size: int,
    candidates: int,
    kinds: Sequence[str],
    anchored: bool = True,
    exact_queries: int = 40,
) -> list[dict[str, object]]:
    """Flat (exact) and each approximate kind at `size` synthetic vectors."""
    vectors = synthetic_vectors(real, size, anchored)
    data = "real+noise" if anchored else "gaussian"
    figures: list[dict[str, object]] = []
    exact = build_vector_index(vectors, VectorIndexSettings(approximate_threshold=size + 1))
    _, truth = exact.search(queries, 10)  # batched exact search: the reference top 10
    latencies = _latencies_ms(
        lambda row: search_vectors(exact, queries[row : row + 1], candidates), exact_queries
    )
    figures.append(_vector_row("flat", data, size, 0.0, exact, latencies, 1.0))
    for kind in kinds:
        settings = VectorIndexSettings(approximate_threshold=0, approximate_kind=kind)  # type: ignore[arg-type]
        started = time.perf_counter()
        index = build_vector_index(vectors, settings)
        build_seconds = time.perf_counter() - started
        found = [search_vectors(index, queries[row : row + 1], 10)[0][0] for row in range(len(queries))]
        recall = statistics.fmean(len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True))

        def search(row: int, index: faiss.Index = index) -> object:
            return search_vectors(index, queries[row : row + 1], candidates)

        latencies = _latencies_ms(search, len(queries))
        figures.append(_vector_row(kind, data, size, build_seconds, index, latencies, recall))
        del index
    return figures


def _vector_row(
    kind: str,
    data: str,
    size: int,
    build_seconds: float,
    index: faiss.Index,
    latencies: list[float],
    recall: float,
) -> dict[str, object]:
    return {
        "index": kind,
        "data": data,
        "kind_check": vector_index_kind(index),
        "chunks": size,
        **_summary(latencies),
        "recall_at_10": round(recall, 4),
        "build_s": round(build_seconds, 1),
        "bytes_per_chunk": round(len(faiss.serialize_index(index)) / size, 1),
        "parameters": _parameters(index),
    }


def _parameters(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexIVFFlat):
        return f"nlist={index.nlist} nprobe={index.nprobe}"
    if isinstance(index, faiss.IndexHNSWFlat):
        return f"M={VectorIndexSettings().hnsw_m} efSearch={index.hnsw.efSearch}"
    return "exact"


def bm25_scaling(
    sentence_tokens: Sequence[list[str]],
    tokens_per_chunk: float,
    questions: Sequence[str],
    size: int,
    candidates: int,
    seed: int = 0,
) -> dict[str, object]:
    """BM25 over `size` passages strung from real stemmed sentences."""
    rng = np.random.default_rng(seed)
    mean_sentence = statistics.fmean(len(tokens) for tokens in sentence_tokens)
    per_passage = max(1, round(tokens_per_chunk / max(mean_sentence, 1.0)))
    picks = rng.integers(0, len(sentence_tokens), size=(size, per_passage))
    passages = [[token for row in rows for token in sentence_tokens[row]] for rows in picks]
    started = time.perf_counter()
    postings = Postings.build(passages)
    build_seconds = time.perf_counter() - started
    del passages
    segment = SegmentPostings(postings, None)
    k1, b = RetrievalOptions().bm25_k1, RetrievalOptions().bm25_b

    def search(row: int) -> object:
        query = terms(questions[row])
        return positive_top(
            score([segment], query, CollectionStatistics.of([segment], query), k1, b), candidates
        )

    latencies = _latencies_ms(search, len(questions))
    matrix_bytes = sum(
        int(array.nbytes) for array in (postings.term_ptr, postings.rows, postings.tf, postings.lengths)
    )
    return {
        "index": "bm25",
        "data": "real sentences",
        "chunks": size,
        **_summary(latencies),
        "build_s": round(build_seconds, 1),
        "bytes_per_chunk": round(matrix_bytes / size, 1),
        "tokens_per_chunk": round(per_passage * mean_sentence, 1),
    }
