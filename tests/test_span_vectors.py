"""Sentence vectors pooled from the chunk's own model pass ("contextual") or embedded alone."""

from __future__ import annotations

import numpy as np
import pytest

from corpus import Document
from index.building import IndexSettings, build_index_data, embedded_passage, known_vectors_of
from index.embedding import HashingEmbedder, SentenceTransformerEmbedder, embed_passages_and_spans
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


@pytest.mark.parametrize("mode", ["contextual", "standalone"])
def test_a_rebuild_reuses_every_vector(mode: str, bundled_documents: list[Document]) -> None:
    settings = IndexSettings(sentence_vectors=mode)
    first = build_index_data(bundled_documents, HashingEmbedder(), settings)
    counting = CountingEmbedder()
    again = build_index_data(bundled_documents, counting, settings, known_vectors=known_vectors_of(first))
    assert counting.embedded == []
    np.testing.assert_array_equal(again.sentence_vectors, first.sentence_vectors)
    assert len(first.sentence_vectors) == len(first.sentence_spans) > len(first.chunks)


@pytest.mark.integration
def test_contextual_vectors_come_from_the_chunk_pass(
    real_embedder: SentenceTransformerEmbedder, bundled_documents: list[Document]
) -> None:
    settings = IndexSettings(sentence_vectors="contextual")
    data = build_index_data(bundled_documents[:1], real_embedder, settings)
    passages = [embedded_passage(c, data.documents[c.document_id], settings) for c in data.chunks]
    # The chunk vector is the model's usual one (mean pooling over the same pass).
    np.testing.assert_allclose(data.chunk_vectors, real_embedder.embed_batch(passages), atol=1e-5)
    norms = np.linalg.norm(data.sentence_vectors, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    # Pooled vectors resemble their own sentence's standalone embedding more than the others'.
    document = data.documents[data.chunks[0].document_id]
    rows = data.chunk_sentences(0)
    alone = real_embedder.embed_batch([document.text[start:end] for _, start, end in rows])
    similarity = data.sentence_vectors[[row for row, _, _ in rows]] @ alone.T
    own = np.diag(similarity)
    others = similarity[~np.eye(len(rows), dtype=bool)]
    assert own.mean() > others.mean() + 0.1
    assert (similarity.argmax(axis=1) == np.arange(len(rows))).mean() >= 0.6
