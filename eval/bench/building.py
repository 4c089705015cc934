"""Build throughput: a real build (chunk, embed, BM25, FAISS, atomic commit) in chunks per second.

The build goes through the service's own `Engine.sync` into a fresh index directory, so what
is timed is what `rag build` does, minus loading the model (already loaded for the floor).
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from corpus import Document
from index.building import embedded_passage
from index.chunking import chunk_document, make_splitter
from index.embedding import Embedder
from service.config import Settings
from service.engine import Engine


@dataclass(frozen=True)
class BuildFigures:
    documents: int
    chunks: int
    sentences: int
    seconds: float
    passages_sample: list[str]

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


def timed_build(
    documents: list[Document], embedder: Embedder, index_dir: Path, sample: int = 512
) -> BuildFigures:
    """Build `documents` from scratch into `index_dir`; a sample of the embedded passages is
    returned so the floor can be measured on the same kind of text."""
    shutil.rmtree(index_dir, ignore_errors=True)
    settings = Settings(_env_file=None, index_dir=index_dir)  # type: ignore[call-arg]
    engine = Engine.from_settings(settings, embedder=embedder)
    started = time.perf_counter()
    result = engine.sync(documents, force=True)
    seconds = time.perf_counter() - started
    data = result.index.data
    passages = [embedded_passage(c, data.documents[c.document_id], data.settings) for c in data.chunks]
    return BuildFigures(
        documents=len(data.documents),
        chunks=len(data.chunks),
        sentences=len(data.sentence_spans),
        seconds=seconds,
        passages_sample=random.Random(0).sample(passages, min(sample, len(passages))),
    )


def sample_passages(documents: list[Document], embedder: Embedder, count: int, seed: int = 0) -> list[str]:
    """Passages as the build will embed them (same chunker and title rule), from a random sample
    of documents: what the passage floor is measured on before the build has run."""
    settings = Settings(_env_file=None).index_settings()  # type: ignore[call-arg]
    splitter = make_splitter(settings.chunker, embedder.count_tokens)
    chosen = random.Random(seed).sample(documents, min(len(documents), count))
    passages = [embedded_passage(c, d, settings) for d in chosen for c in chunk_document(d, splitter)]
    return random.Random(seed).sample(passages, min(count, len(passages)))
