"""The FAISS vector index over chunk embeddings (inner product on normalised vectors = cosine).

Below `approximate_threshold` chunks the index is exact (`IndexFlatIP`): a brute-force scan of
100k chunks still answers in a few milliseconds. From there on it is approximate, by default
IVF (`IndexIVFFlat`: k-means cells, a query scans the `nprobe` nearest cells) because it builds
in minutes at a million chunks on two cores where HNSW takes far longer for similar recall and
speed; HNSW (`IndexHNSWFlat`) stays selectable. Both were measured against exact search by
`make bench` (recall@10, latency, build time); the defaults below come from those runs and
are the one place both the service and the benchmark take IVF's cells and probes from.

A single query scans its cells on one thread whatever `faiss.omp_get_max_threads()` says
(FAISS parallelises over queries): pinning FAISS to 1 thread measured the same p50 as 2 threads
at 1M chunks, so the thread count is left alone.

Out of scope: compressed vectors (PQ, SQ): at this scale full float32 vectors fit in memory and
keep scores exact for the candidates found.
"""

from __future__ import annotations

import math

import faiss
import numpy as np
import numpy.typing as npt

from index.embedding import Vectors
from index.settings import VectorIndexSettings

# Cells probed in an IVF segment searched beside others (`ivf_probes_in_segment`).
SEGMENT_PROBES = 32


def ivf_lists_for(count: int) -> int:
    """About 2 sqrt(n) cells, rounded to a power of two (2048 at a million chunks): smaller
    cells make each probe cheaper, while k-means training and assignment, paid again on every
    rebuild, grow with the number of cells."""
    return int(2 ** round(math.log2(max(2 * math.sqrt(max(count, 1)), 16))))


def ivf_probes_for(lists: int) -> int:
    """Cells a query scans: 48 below 2048 cells, 32 from there on (a million chunks and up).

    Measured on the benchmark's real+noise vectors, recall@10 against exact search (200 SciFact
    questions, one at a time, 100 candidates; p50 on 2 shared cores):
    512 cells (100k chunks): 24 probes 0.935, 32 0.952, 48 0.967 (2.4 ms);
    2048 cells (1M): 16 0.943, 24 0.956, 32 0.972 (3.7 ms), 48 0.983 (5.4 ms);
    4096 cells (1M): 24 0.966 (1.7 ms) but k-means over 4096 cells tripled the build (145 s).
    Fuller cells need fewer probes; 32 keeps a margin over 0.95 where 24 would not."""
    return 48 if lists < 2048 else 32


def ivf_probes_in_segment(probes: int, alone: bool) -> int:
    """Cells to probe in an IVF segment whose own setting is `probes`: that setting when the
    segment is the whole commit (`alone`), else at most `SEGMENT_PROBES`.

    A segment's own probes are what keeps recall@10 above 0.95 when it is searched alone, with a
    margin: 48 of 512 cells at 100k chunks (0.967; 32 gives 0.952). Searched beside other
    segments, the collection's top 10 is the merged top of every segment's, and with 10 segments
    of 100k chunks (real+noise vectors, 300 SciFact questions, against exact search over the
    million) recall@10 was 0.948 at 24 probes each, 0.953 at 28, 0.960 at 32, 0.966 at 40 and
    0.973 at 48 (the `large` phase of `python -m eval.bench` measures it again). A query scans
    ``probes / lists`` of every segment's vectors, so 32 instead of 48 is a third less of the
    dense search; it does not go lower because the margin over 0.95 would be gone."""
    return probes if alone else min(probes, SEGMENT_PROBES)


def build_vector_index(vectors: Vectors, settings: VectorIndexSettings, seed: int = 0) -> faiss.Index:
    dimension = vectors.shape[1]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index: faiss.Index
    if len(vectors) < settings.approximate_threshold:
        index = faiss.IndexFlatIP(dimension)
    elif settings.approximate_kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
    else:
        index = _trained_ivf(vectors, settings, seed)
    if len(vectors):
        index.add(vectors)
    return index


def _trained_ivf(vectors: Vectors, settings: VectorIndexSettings, seed: int) -> faiss.Index:
    lists = min(settings.ivf_lists or ivf_lists_for(len(vectors)), len(vectors))  # k-means needs k <= n
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
    # k-means on a sample: enough points per cell for stable centroids, far cheaper than all.
    sample_size = min(len(vectors), lists * settings.ivf_training_points_per_list)
    sample = np.random.default_rng(seed).choice(len(vectors), size=sample_size, replace=False)
    index.train(vectors[np.sort(sample)])
    index.nprobe = min(lists, settings.ivf_nprobe or ivf_probes_for(lists))
    return index


def vector_index_kind(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    return "flat"


def search_vectors(
    index: faiss.Index, query: Vectors, limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Rows and cosines of the nearest `limit` chunks to each query row (-1 rows: fewer found)."""
    limit = min(limit, index.ntotal)
    if limit == 0:
        empty = np.zeros((len(query), 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    scores, rows = index.search(np.ascontiguousarray(query, dtype=np.float32), limit)
    return rows.astype(np.int64), scores.astype(np.float32)
