"""Sentence vectors pooled from the chunk's own model pass ("contextual") or embedded alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.embedding import HashingEmbedder, SentenceTransformerEmbedder, embed_passages_and_spans
from index.settings import IndexSettings, SentenceVectors
from index.write.building import build_segment_data, embedded_passage, known_vectors_of
from index.write.writer import build_index
from tests.conftest import CountingEmbedder


def test_without_a_span_embedder_each_span_is_embedded_on_its_own() -> None:
    embedder = HashingEmbedder()
    texts = ["Title\nFirst sentence here. Second one there.", "Only one."]
    spans = [[(6, 26), (27, 44)], [(0, 9)]]
    vectors, span_vectors = embed_passages_and_spans(embedder, texts, spans)
    np.testing.assert_allclose(vectors, embedder.embed_batch(texts))
    np.testing.assert_allclose(
        span_vectors[0], embedder.embed_batch(["First sentence here.", "Second one there."])
    )
    np.testing.assert_allclose(span_vectors[1], embedder.embed_batch(["Only one."]))


@pytest.mark.parametrize("mode", list(SentenceVectors))
def test_a_rebuild_reuses_every_vector(
    mode: SentenceVectors, bundled_documents: list[Document], tmp_path: Path
) -> None:
    settings = IndexSettings(sentence_vectors=mode)
    first = build_index(tmp_path, bundled_documents, HashingEmbedder(), settings=settings)
    [segment] = first.segments
    counting = CountingEmbedder()
    known = known_vectors_of(segment, range(segment.document_count))
    again = build_segment_data(bundled_documents, counting, settings, known_vectors=known)
    assert counting.embedded == []
    np.testing.assert_array_equal(again.sentence_vectors, segment.sentence_vectors)
    assert len(segment.sentence_vectors) == len(segment.sentence_spans) > segment.chunk_count


@pytest.mark.integration
def test_contextual_vectors_come_from_the_chunk_pass(
    real_embedder: SentenceTransformerEmbedder, bundled_documents: list[Document], tmp_path: Path
) -> None:
    settings = IndexSettings(sentence_vectors=SentenceVectors.CONTEXTUAL)
    reader = build_index(tmp_path, bundled_documents[:1], real_embedder, settings=settings)
    [document] = reader.documents()
    chunks = [reader.chunk(row) for row in range(reader.chunk_count)]
    passages = [embedded_passage(c, document, settings) for c in chunks]
    # The chunk vector is the model's usual one (mean pooling over the same pass).
    chunk_vectors = reader.chunk_vectors(list(range(reader.chunk_count)))
    np.testing.assert_allclose(chunk_vectors, real_embedder.embed_batch(passages), atol=1e-5)
    norms = np.linalg.norm(reader.segments[0].sentence_vectors, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    # Pooled vectors resemble their own sentence's standalone embedding more than the others'.
    rows = reader.sentences(0)
    alone = real_embedder.embed_batch([document.text[s.start : s.end] for s in rows])
    similarity = reader.sentence_vectors([s.row for s in rows]) @ alone.T
    own = np.diag(similarity)
    others = similarity[~np.eye(len(rows), dtype=bool)]
    assert own.mean() > others.mean() + 0.1
    assert (similarity.argmax(axis=1) == np.arange(len(rows))).mean() >= 0.6
