"""A cached, ranking-only index of a BEIR corpus, built with the service's own pipeline.

Two caches, both under a caller-given directory (keep it outside git, e.g. `.rag/eval`):

* embeddings keyed by the exact text embedded (`<model>/vectors.npy` + `keys.json`), shared by
  every index built from that corpus, so trying another chunk size or title setting re-embeds
  only passages it has not seen;
* the index itself, one `IndexStore` per (corpus, settings, model) fingerprint, loaded with its
  checksums verified on the next run.

Left out: sentence spans and vectors (`with_sentences=False`): ranking metrics need neither.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Embedder
from index.errors import IndexError_
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.storage.arrays import npy_bytes
from index.storage.commits import SegmentEntry, first_commit
from index.storage.files import write_atomically
from index.storage.segments import Segment, publish_segment, stage_segment
from index.storage.store import IndexStore
from index.text.analysis import ANALYSER_VERSION
from index.write.building import (
    build_segment_data,
    corpus_fingerprint,
    known_vectors_of,
    settings_fingerprint,
)

RANKING_ONLY = "ranking-only-v2"
WHOLE = "whole-v2"


class EmbeddingCache:
    """Text key -> vector for one model, persisted as one `.npy` matrix and its key list."""

    def __init__(self, directory: Path, model_name: str) -> None:
        self.directory = directory / _safe_name(model_name)
        self.vectors: dict[str, npt.NDArray[np.float32]] = {}
        keys_path, vectors_path = self.directory / "keys.json", self.directory / "vectors.npy"
        if keys_path.exists() and vectors_path.exists():
            keys = json.loads(keys_path.read_text("utf-8"))
            matrix = np.load(vectors_path)
            if len(keys) == len(matrix):  # a torn pair (never expected: both are renamed in) is ignored
                self.vectors = dict(zip(keys, matrix, strict=True))
        self._saved = len(self.vectors)

    def update(self, segment: Segment) -> None:
        self.vectors.update(known_vectors_of(segment, range(segment.document_count)))

    def save(self) -> None:
        if len(self.vectors) == self._saved:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        matrix = np.stack([self.vectors[key] for key in keys]).astype(np.float32)
        # Vectors first: a crash between the two renames leaves a length mismatch, read as empty.
        write_atomically(self.directory / "vectors.npy", npy_bytes(matrix))
        write_atomically(self.directory / "keys.json", json.dumps(keys).encode())
        self._saved = len(keys)


def cached_ranking_index(
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
    cache_dir: Path,
    show_progress: bool = False,
) -> IndexReader:
    """The ranking-only index of `documents` (`cached_index` without sentences)."""
    return cached_index(documents, embedder, settings, cache_dir, show_progress, with_sentences=False)


def cached_index(
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
    cache_dir: Path,
    show_progress: bool = False,
    with_sentences: bool = True,
) -> IndexReader:
    """The index of `documents` under `settings`, opened from `cache_dir` or built and stored
    there (one segment), embedding only what the embedding cache lacks."""
    kind = RANKING_ONLY if not with_sentences else WHOLE
    store = IndexStore(cache_dir / "indexes" / _fingerprint(documents, settings, embedder, kind)[:16])
    try:
        if store.current() is not None:
            return IndexReader.open(store)
    except IndexError_:
        shutil.rmtree(store.root, ignore_errors=True)  # a damaged cache is rebuilt below
    cache = EmbeddingCache(cache_dir / "embeddings", embedder.model_name)
    data = build_segment_data(
        documents,
        embedder,
        settings,
        cache.vectors,
        show_progress=show_progress,
        with_sentences=with_sentences,
    )
    with store.write_lock():
        segment = stage_segment(store.segments_dir, data)
        publish_segment(segment)
        entry = SegmentEntry(segment.name, segment.document_count, segment.chunk_count)
        store.publish(first_commit(embedder.model_name, embedder.dimension, settings).successor((entry,)))
    cache.update(segment)
    cache.save()
    return IndexReader.open(store)


def _fingerprint(
    documents: Sequence[Document], settings: IndexSettings, embedder: Embedder, kind: str
) -> str:
    parts = [corpus_fingerprint(documents), settings_fingerprint(settings, embedder.model_name, 0)]
    parts += [str(ANALYSER_VERSION), kind]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"
