"""Build a segment's data from documents: chunks, sentences, vectors, BM25 postings.

Embeddings are keyed by the exact text that was embedded, so an incremental build (a document
added, replaced or removed) re-embeds only text it has not seen in the previous generation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from corpus import Document
from index.embedding import Embedder, Vectors, embed_passages_and_spans
from index.settings import IndexSettings, SentenceVectors
from index.storage.postings import Postings
from index.storage.segments import Segment, SegmentData, StoredDocuments
from index.text.analysis import terms
from index.text.chunking import Chunk, chunk_document, make_splitter
from index.text.metadata import metadata_values
from index.text.text_spans import sentence_spans


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
    """What BM25 indexes for a chunk: its text, after the document's citation fields (the title
    if the settings say so; the author, source and publication date always), so a question naming
    an author or a publication finds the document's passages (`index.text.metadata`)."""
    fields = [document.title] if settings.title_in_bm25 and document.title else []
    fields += [value for value in metadata_values(document) if value]
    return "\n".join([*fields, chunk.text])


@dataclass(frozen=True)
class ChunkLayout:
    """What a build cuts `documents` into, before anything is embedded: the documents in id
    order, their chunks (`chunk_rows`: document row, start, end), each chunk's sentence spans in
    the document (`sentence_spans[sentence_ptr[i]:sentence_ptr[i + 1]]`), the passage embedded for
    each chunk and its sentence spans inside that passage. Each document's part depends on that
    document alone, so a cluster can lay documents out in parallel (`index.cluster.embedding`)."""

    documents: list[Document]
    by_id: dict[str, Document]
    chunks: list[Chunk]
    chunk_rows: list[tuple[int, int, int]]
    sentence_spans: list[tuple[int, int]]
    sentence_ptr: list[int]
    passages: list[str]
    passage_spans: list[list[tuple[int, int]]]

    def texts_to_embed(self) -> list[str]:
        """The texts a build with standalone sentence vectors embeds: every passage, then every
        sentence of every passage."""
        sentences = [
            passage[start:end]
            for passage, spans in zip(self.passages, self.passage_spans, strict=True)
            for start, end in spans
        ]
        return self.passages + sentences


def chunk_layout(
    documents: Sequence[Document],
    count_tokens: Callable[[str], int],
    settings: IndexSettings,
    with_sentences: bool = True,
) -> ChunkLayout:
    """`documents` chunked (chunk lengths counted by `count_tokens`, the model's word pieces)
    and their passages and sentence spans laid out, as `build_segment_data` embeds them."""
    splitter = make_splitter(settings.chunker, count_tokens)
    ordered = sorted(documents, key=lambda d: d.id)
    chunks: list[Chunk] = []
    chunk_rows: list[tuple[int, int, int]] = []
    for row, document in enumerate(ordered):
        for chunk in chunk_document(document, splitter):
            chunks.append(chunk)
            chunk_rows.append((row, chunk.start, chunk.end))
    by_id = {document.id: document for document in ordered}
    spans: list[tuple[int, int]] = []
    pointer = [0]
    for chunk in chunks:
        if with_sentences:
            spans.extend(sentence_spans(by_id[chunk.document_id].text, chunk.start, chunk.end))
        pointer.append(len(spans))
    passages = [embedded_passage(c, by_id[c.document_id], settings) for c in chunks]
    passage_spans = [
        _spans_in_passage(passage, chunk, spans[first:last])
        for passage, chunk, first, last in zip(passages, chunks, pointer, pointer[1:], strict=False)
    ]
    return ChunkLayout(ordered, by_id, chunks, chunk_rows, spans, pointer, passages, passage_spans)


def build_segment_data(
    documents: Sequence[Document],
    embedder: Embedder,
    settings: IndexSettings,
    known_vectors: dict[str, npt.NDArray[np.float32]] | None = None,
    show_progress: bool = False,
    with_sentences: bool = True,
) -> SegmentData:
    """Chunk, embed (reusing `known_vectors` by text key) and index `documents` as one segment,
    documents in id order.

    `with_sentences=False` skips sentence spans and their vectors (answer spans then fall back
    to the whole chunk): ranking-only indexes, such as a BEIR corpus under evaluation, need
    neither and embedding every sentence would double the cost.
    """
    layout = chunk_layout(documents, embedder.count_tokens, settings, with_sentences)
    ordered, by_id, chunks = layout.documents, layout.by_id, layout.chunks
    pointer, passages, passage_spans = layout.sentence_ptr, layout.passages, layout.passage_spans
    sentence_offsets = np.asarray(layout.sentence_spans, dtype=np.int64).reshape(-1, 2)
    if settings.sentence_vectors == SentenceVectors.CONTEXTUAL:
        chunk_vectors, sentence_vectors = _embed_with_reuse(
            passages, passage_spans, embedder, known_vectors or {}, show_progress
        )
    else:
        vectors = _embed_texts_with_reuse(
            layout.texts_to_embed(), embedder, known_vectors or {}, show_progress
        )
        chunk_vectors, sentence_vectors = vectors[: len(passages)], vectors[len(passages) :]
    return SegmentData(
        documents=StoredDocuments.of(ordered),
        chunks=np.asarray(layout.chunk_rows, dtype=np.int64).reshape(-1, 3),
        chunk_vectors=chunk_vectors,
        sentence_ptr=np.asarray(pointer, dtype=np.int64),
        sentence_spans=sentence_offsets,
        sentence_questions=question_sentences(by_id, chunks, pointer, sentence_offsets),
        sentence_vectors=sentence_vectors,
        postings=Postings.build([terms(lexical_passage(c, by_id[c.document_id], settings)) for c in chunks]),
        settings=settings,
        model_name=embedder.model_name,
        dimension=embedder.dimension,
    )


def question_sentences(
    documents: dict[str, Document],
    chunks: Sequence[Chunk],
    sentence_ptr: Sequence[int],
    sentence_spans: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """True for each sentence that is itself a question: it ends with "?", maybe before a closing
    quote. Computed once per build, not per query or per load."""
    mask = np.zeros(len(sentence_spans), dtype=bool)
    for row, chunk in enumerate(chunks):
        text = documents[chunk.document_id].text
        for sentence_row in range(int(sentence_ptr[row]), int(sentence_ptr[row + 1])):
            end = int(sentence_spans[sentence_row, 1])
            mask[sentence_row] = text[end - 1] == "?" or text[max(end - 2, 0) : end].startswith("?")
    return mask


def known_vectors_of(segment: Segment, document_rows: Iterable[int]) -> dict[str, npt.NDArray[np.float32]]:
    """Text key -> vector for everything `segment` embedded for `document_rows`, to seed a build
    that re-embeds only text it has not seen."""
    settings = segment.settings
    contextual = settings.sentence_vectors == SentenceVectors.CONTEXTUAL
    known: dict[str, npt.NDArray[np.float32]] = {}
    for document_row in document_rows:
        first, last = int(segment.chunk_ptr[document_row]), int(segment.chunk_ptr[document_row + 1])
        if first == last:
            continue
        document = segment.document(document_row)
        vectors = segment.chunk_vectors(np.arange(first, last))
        for row, vector in zip(range(first, last), vectors, strict=True):
            chunk = segment.chunk(row)
            passage = embedded_passage(chunk, document, settings)
            known[text_key(passage)] = vector
            sentence_first, sentence_last = int(segment.sentence_ptr[row]), int(segment.sentence_ptr[row + 1])
            spans = [
                tuple(int(v) for v in span) for span in segment.sentence_spans[sentence_first:sentence_last]
            ]
            relative = _spans_in_passage(passage, chunk, spans)  # type: ignore[arg-type]
            for sentence_row, (start, end) in zip(
                range(sentence_first, sentence_last), relative, strict=True
            ):
                key = span_key(passage, start, end) if contextual else text_key(passage[start:end])
                known[key] = np.asarray(segment.sentence_vectors[sentence_row], dtype=np.float32)
    return known


def span_key(passage: str, start: int, end: int) -> str:
    """Key of a sentence vector: it is pooled from the passage's tokens (see
    `embed_passages_and_spans`), so it depends on the whole passage, not only the sentence."""
    return text_key(f"{start}:{end}\0{passage}")


def _spans_in_passage(passage: str, chunk: Chunk, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Document offsets of the chunk's sentences -> offsets into the embedded passage."""
    shift = passage.rfind(chunk.text)
    if shift < 0:
        raise ValueError(f"embedded passage of chunk {chunk.id} does not contain the chunk text")
    return [(start - chunk.start + shift, end - chunk.start + shift) for start, end in spans]


def _embed_texts_with_reuse(
    texts: list[str],
    embedder: Embedder,
    known: dict[str, npt.NDArray[np.float32]],
    show_progress: bool,
    batch_size: int = 64,
) -> Vectors:
    """One vector per text, each distinct text not in `known` embedded once."""
    keys = [text_key(text) for text in texts]
    missing = list(dict.fromkeys(key for key in keys if key not in known))
    text_of = dict(zip(keys, texts, strict=True))
    fresh: dict[str, npt.NDArray[np.float32]] = {}
    # Longest first so each batch pads little; the order is undone by the key lookup below.
    missing.sort(key=lambda key: len(text_of[key]), reverse=True)
    with tqdm(total=len(missing), desc="embedding", unit="text", disable=not show_progress) as bar:
        for begin in range(0, len(missing), batch_size):
            batch = missing[begin : begin + batch_size]
            for key, vector in zip(batch, embedder.embed_batch([text_of[k] for k in batch]), strict=True):
                fresh[key] = vector
            bar.update(len(batch))
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.stack([fresh[key] if key in fresh else known[key] for key in keys]).astype(np.float32)


def _embed_with_reuse(
    passages: list[str],
    spans: list[list[tuple[int, int]]],
    embedder: Embedder,
    known: dict[str, npt.NDArray[np.float32]],
    show_progress: bool,
    batch_size: int = 64,
) -> tuple[Vectors, Vectors]:
    """Passage vectors and, row after row, the vectors of each passage's sentence spans; a
    passage is encoded again only if its vector or one of its span vectors is not `known`."""
    passage_keys = [text_key(passage) for passage in passages]
    span_keys = [
        [span_key(passage, start, end) for start, end in passage_spans]
        for passage, passage_spans in zip(passages, spans, strict=True)
    ]
    missing = list(
        dict.fromkeys(
            row
            for row, (key, keys) in enumerate(zip(passage_keys, span_keys, strict=True))
            if key not in known or any(k not in known for k in keys)
        )
    )
    fresh: dict[str, npt.NDArray[np.float32]] = {}
    # Longest first so each batch pads little; the order is undone by the key lookup below.
    missing.sort(key=lambda row: len(passages[row]), reverse=True)
    progress: Callable[[int], object]
    with tqdm(total=len(missing), desc="embedding", unit="passage", disable=not show_progress) as bar:
        progress = bar.update
        for begin in range(0, len(missing), batch_size):
            batch = missing[begin : begin + batch_size]
            vectors, span_vectors = embed_passages_and_spans(
                embedder, [passages[row] for row in batch], [spans[row] for row in batch]
            )
            for row, vector, row_span_vectors in zip(batch, vectors, span_vectors, strict=True):
                fresh[passage_keys[row]] = vector
                fresh.update(zip(span_keys[row], row_span_vectors, strict=True))
            progress(len(batch))

    def vector_of(key: str) -> npt.NDArray[np.float32]:
        return fresh[key] if key in fresh else known[key]

    empty = np.zeros((0, embedder.dimension), dtype=np.float32)
    chunk_vectors = np.stack([vector_of(key) for key in passage_keys]) if passages else empty
    all_span_keys = [key for keys in span_keys for key in keys]
    sentence_vectors = np.stack([vector_of(key) for key in all_span_keys]) if all_span_keys else empty
    return chunk_vectors.astype(np.float32), sentence_vectors.astype(np.float32)
