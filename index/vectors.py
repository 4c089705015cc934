"""The FAISS vector index over chunk embeddings (inner product on normalised vectors = cosine).

Below `approximate_threshold` chunks the index is exact (`IndexFlatIP`); from there on it is
HNSW (`IndexHNSWFlat` with inner product), whose recall and speed are measured in `make bench`.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from index.embedding import Vectors


@dataclass(frozen=True)
class VectorIndexSettings:
    approximate_threshold: int = 200_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128


def build_vector_index(vectors: Vectors, settings: VectorIndexSettings) -> faiss.Index:
    dimension = vectors.shape[1]
    index: faiss.Index
    if len(vectors) >= settings.approximate_threshold:
        index = faiss.IndexHNSWFlat(dimension, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def vector_index_kind(index: faiss.Index) -> str:
    return "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"


def search_vectors(
    index: faiss.Index, query: Vectors, limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Rows and cosines of the nearest `limit` chunks to each query row."""
    limit = min(limit, index.ntotal)
    if limit == 0:
        empty = np.zeros((len(query), 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    scores, rows = index.search(np.ascontiguousarray(query, dtype=np.float32), limit)
    return rows.astype(np.int64), scores.astype(np.float32)
