"""The FAISS vector index over chunk embeddings (inner product on normalised vectors = cosine).

Below `approximate_threshold` chunks the index is exact (`IndexFlatIP`): a brute-force scan of
100k chunks still answers in a few milliseconds. From there on it is approximate, by default
IVF (`IndexIVFFlat`: k-means cells, a query scans the `nprobe` nearest cells) because it builds
in minutes at a million chunks on two cores where HNSW takes far longer for similar recall and
speed; HNSW (`IndexHNSWFlat`) stays selectable. Both were measured against exact search by
`make bench` (recall@10, latency, build time); the defaults below come from those runs.

Out of scope: compressed vectors (PQ, SQ): at this scale full float32 vectors fit in memory and
keep scores exact for the candidates found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np
import numpy.typing as npt

from index.embedding import Vectors

ApproximateKind = Literal["ivf", "hnsw"]


@dataclass(frozen=True)
class VectorIndexSettings:
    approximate_threshold: int = 100_000
    approximate_kind: ApproximateKind = "ivf"
    # IVF: 0 = sized from the data (`ivf_lists_for`); a query scans the `ivf_nprobe` nearest cells.
    # Recall follows the number of cells probed more than the share of vectors scanned: 48 of
    # 2048 cells kept recall@10 near 0.97 at a million chunks (`make bench`).
    ivf_lists: int = 0
    ivf_nprobe: int = 48
    ivf_training_points_per_list: int = 40
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> VectorIndexSettings:
        """Settings recorded in a manifest; keys this version does not know are ignored, so an
        index written by an older or newer version still loads."""
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in values.items() if key in known})  # type: ignore[arg-type]


def ivf_lists_for(count: int) -> int:
    """About 2 sqrt(n) cells, rounded to a power of two (2048 at a million chunks): smaller
    cells make each probe cheaper, while k-means training and assignment, paid again on every
    rebuild, grow with the number of cells."""
    return int(2 ** round(math.log2(max(2 * math.sqrt(max(count, 1)), 16))))


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
    index.nprobe = min(lists, settings.ivf_nprobe)
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
