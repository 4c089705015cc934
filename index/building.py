"""Build the in-memory index data from documents: chunks, sentences, vectors, BM25, FAISS.

Embeddings are keyed by the exact text that was embedded, so an incremental build (a document
added, replaced or removed) re-embeds only text it has not seen in the previous generation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import faiss
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from corpus import Document
from index.chunking import Chunk, ChunkerSettings, chunk_document, make_splitter
from index.embedding import Embedder, Vectors
from index.lexical import LexicalIndex
from index.text_spans import sentence_spans
from index.vectors import VectorIndexSettings, build_vector_index


@dataclass(frozen=True)
class IndexSettings:
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    vectors: VectorIndexSettings = field(default_factory=VectorIndexSettings)
    title_in_embedding: bool = True
    title_in_bm25: bool = True
    bm25_k1: float = 1.2
    bm25_b: float = 0.75

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> IndexSettings:
        values = dict(data)
        chunker = ChunkerSettings(**values.pop("chunker", {}))  # type: ignore[arg-type]
        vectors = VectorIndexSettings(**values.pop("vectors", {}))  # type: ignore[arg-type]
        return cls(chunker=chunker, vectors=vectors, **values)  # type: ignore[arg-type]


@dataclass
class IndexData:
    """Everything a query needs, in memory. Row i of every array belongs to `chunks[i]`."""

    documents: dict[str, Document]
    chunks: list[Chunk]
    chunk_vectors: Vectors
    sentence_ptr: npt.NDArray[np.int64]  # sentences of chunk i: rows sentence_ptr[i]:[i+1]
    sentence_spans: npt.NDArray[np.int64]  # (m, 2): start, end offsets into the document
    sentence_vectors: Vectors
    lexical: LexicalIndex
    vector_index: faiss.Index
    settings: IndexSettings
    model_name: str
    dimension: int

    def chunk_sentences(self, row: int) -> list[tuple[int, int, int]]:
        """(sentence row, start, end) of each sentence of chunk `row`."""
        first, last = int(self.sentence_ptr[row]), int(self.sentence_ptr[row + 1])
        return [
            (i, int(s), int(e))
            for i, (s, e) in zip(range(first, last), self.sentence_spans[first:last], strict=True)
        ]


def corpus_fingerprint(documents: Sequence[Document]) -> str:
    digest = hashlib.sha256()
    for document in sorted(documents, key=lambda d: d.id):
        digest.update(f"{document.id}\0{document.content_hash}\n".encode())
    return digest.hexdigest()


def settings_fingerprint(settings: IndexSettings, model_name: str, dimension: int) -> str:
    payload = json.dumps([settings.to_dict(), model_name, dimension], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def embedded_passage(chunk: Chunk, document: Document, settings: IndexSettings) -> str:
    return f"{document.title}\n{chunk.text}" if settings.title_in_embedding and document.title else chunk.text


def lexical_passage(chunk: Chunk, document: Document, settings: IndexSettings) -> str:
    return f"{document.title}\n{chunk.text}" if settings.title_in_bm25 and document.title else chunk.text


def build_index_data(
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
    known_vectors: dict[str, npt.NDArray[np.float32]] | None = None,
    show_progress: bool = False,
) -> IndexData:
    """Chunk, embed (reusing `known_vectors` by text key) and index `documents`."""
    splitter = make_splitter(settings.chunker, embedder.count_tokens)
    by_id = {document.id: document for document in sorted(documents, key=lambda d: d.id)}
    chunks = [chunk for document in by_id.values() for chunk in chunk_document(document, splitter)]

    spans: list[tuple[int, int]] = []
    pointer = [0]
    for chunk in chunks:
        spans.extend(sentence_spans(by_id[chunk.document_id].text, chunk.start, chunk.end))
        pointer.append(len(spans))
    passages = [embedded_passage(c, by_id[c.document_id], settings) for c in chunks]
    sentences = [
        by_id[chunk.document_id].text[start:end]
        for chunk, first, last in zip(chunks, pointer, pointer[1:], strict=False)
        for start, end in spans[first:last]
    ]
    vectors = _embed_with_reuse(passages + sentences, embedder, known_vectors or {}, show_progress)
    chunk_vectors, sentence_vectors = vectors[: len(passages)], vectors[len(passages) :]

    lexical = LexicalIndex.build(
        [lexical_passage(c, by_id[c.document_id], settings) for c in chunks] or [""],
        k1=settings.bm25_k1,
        b=settings.bm25_b,
    )
    return IndexData(
        documents=by_id,
        chunks=chunks,
        chunk_vectors=chunk_vectors,
        sentence_ptr=np.asarray(pointer, dtype=np.int64),
        sentence_spans=np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        sentence_vectors=sentence_vectors,
        lexical=lexical,
        vector_index=build_vector_index(chunk_vectors, settings.vectors),
        settings=settings,
        model_name=embedder.model_name,
        dimension=embedder.dimension,
    )


def known_vectors_of(data: IndexData) -> dict[str, npt.NDArray[np.float32]]:
    """Text key -> vector for everything `data` embedded, to seed an incremental build."""
    known: dict[str, npt.NDArray[np.float32]] = {}
    for row, chunk in enumerate(data.chunks):
        document = data.documents[chunk.document_id]
        known[text_key(embedded_passage(chunk, document, data.settings))] = data.chunk_vectors[row]
        for sentence_row, start, end in data.chunk_sentences(row):
            known[text_key(document.text[start:end])] = data.sentence_vectors[sentence_row]
    return known


def _embed_with_reuse(
    texts: list[str],
    embedder: Embedder,
    known: dict[str, npt.NDArray[np.float32]],
    show_progress: bool,
    batch_size: int = 64,
) -> Vectors:
    keys = [text_key(text) for text in texts]
    missing = list(dict.fromkeys(key for key in keys if key not in known))
    text_of = dict(zip(keys, texts, strict=True))
    fresh: dict[str, npt.NDArray[np.float32]] = {}
    # Longest first so each batch pads little; the order is undone by the key lookup below.
    missing.sort(key=lambda key: len(text_of[key]), reverse=True)
    progress: Callable[[int], object]
    with tqdm(total=len(missing), desc="embedding", unit="text", disable=not show_progress) as bar:
        progress = bar.update
        for begin in range(0, len(missing), batch_size):
            batch = missing[begin : begin + batch_size]
            for key, vector in zip(batch, embedder.embed_batch([text_of[k] for k in batch]), strict=True):
                fresh[key] = vector
            progress(len(batch))
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.stack([fresh[key] if key in fresh else known[key] for key in keys]).astype(np.float32)
