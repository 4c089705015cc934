"""Build throughput: a real build (chunk, embed, BM25, FAISS, atomic commit) in chunks per second.

The build goes through the service's own `Engine.sync` into a fresh index directory, so what
is timed is what `rag build` does, minus loading the model (already loaded for the floor). Each
build is timed for one sentence-vector mode (`standalone`: every sentence embedded again on its
own; `contextual`: sentence vectors pooled from the chunk's own forward pass), and the time
spent inside the model (encoding) and in word-piece counting (chunking) is split out from the
rest (sentence splitting, hashing, BM25, FAISS, writing) by a timing wrapper around the embedder.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corpus import Document
from index.embedding import Embedder, SentenceTransformerEmbedder, Vectors
from index.settings import SentenceVectors
from index.text.chunking import chunk_document, make_splitter
from index.write.building import embedded_passage
from service.config import Settings
from service.engine import Engine

SENTENCE_VECTOR_MODES = tuple(SentenceVectors)


class TimedEmbedder(SentenceTransformerEmbedder):
    """The bench's model with a stopwatch: seconds spent encoding and counting word pieces."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        inner.model  # noqa: B018 (load it once, here, so both share it)
        self.__dict__.update(inner.__dict__)  # same loaded model, tokenizer and settings
        self.encode_seconds = 0.0
        self.count_seconds = 0.0

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        started = time.perf_counter()
        try:
            return super().embed_batch(texts)
        finally:
            self.encode_seconds += time.perf_counter() - started

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors]]:
        started = time.perf_counter()
        encode_before = self.encode_seconds
        try:
            return super().embed_with_spans(texts, spans)
        finally:  # its own fallback `embed_batch` calls are already counted
            self.encode_seconds = encode_before + time.perf_counter() - started

    def count_tokens(self, text: str) -> int:
        started = time.perf_counter()
        try:
            return super().count_tokens(text)
        finally:
            self.count_seconds += time.perf_counter() - started


@dataclass(frozen=True)
class BuildFigures:
    sentence_vectors: str
    documents: int
    chunks: int
    sentences: int
    seconds: float
    encode_seconds: float
    count_seconds: float
    passages_sample: list[str]

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


def timed_build(
    documents: list[Document],
    embedder: SentenceTransformerEmbedder,
    index_dir: Path,
    sentence_vectors: str = "standalone",
    sample: int = 512,
) -> BuildFigures:
    """Build `documents` from scratch into `index_dir` with `sentence_vectors` mode; a sample of
    the embedded passages is returned so the floor can be measured on the same kind of text."""
    shutil.rmtree(index_dir, ignore_errors=True)
    settings = Settings(_env_file=None, index_dir=index_dir, sentence_vectors=sentence_vectors)  # type: ignore[call-arg]
    timed = TimedEmbedder(embedder)
    engine = Engine.from_settings(settings, embedder=timed)
    started = time.perf_counter()
    result = engine.sync(documents, force=True)
    seconds = time.perf_counter() - started
    reader = result.reader
    chunks = [reader.chunk(row) for row in range(int(reader.bases[-1]))]
    passages = [embedded_passage(c, reader.document(c.document_id), reader.settings) for c in chunks]  # type: ignore[arg-type]
    return BuildFigures(
        sentence_vectors=reader.settings.sentence_vectors,
        documents=reader.document_count,
        chunks=reader.chunk_count,
        sentences=int(reader.sentence_bases[-1]),
        seconds=seconds,
        encode_seconds=timed.encode_seconds,
        count_seconds=timed.count_seconds,
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
