"""The real model's `embed_batch` gives exactly what `SentenceTransformer.encode` gives."""

from __future__ import annotations

import numpy as np
import pytest

from index.embedding import SentenceTransformerEmbedder

pytestmark = pytest.mark.integration


def test_embed_batch_matches_encode(real_embedder: SentenceTransformerEmbedder) -> None:
    texts = [
        "what projects could Larijani's visit accelerate?",
        "Tokyo",
        # Longer than the model's 256 word pieces: truncated the same way by both paths.
        "The Peace Pipeline and joint port initiatives. " * 60,
        *(f"question number {n} about the defence pact" for n in range(40)),  # more than one batch
    ]
    expected = real_embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    vectors = real_embedder.embed_batch(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 384)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_batch_of_nothing(real_embedder: SentenceTransformerEmbedder) -> None:
    assert real_embedder.embed_batch([]).shape == (0, 384)


def test_vectors_do_not_depend_on_a_module_left_in_training_mode(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    """Dropout must never be on when encoding: torch's ONNX exporter once left the shared model's
    transformer in training mode, and every later vector came out different (cosine ~0.97)."""
    texts = ["what projects could Larijani's visit accelerate?", "The Peace Pipeline and joint ports. " * 8]
    spans = [[(0, 13)], [(4, 17), (20, 40)]]
    expected = real_embedder.embed_batch(texts)
    expected_spans = real_embedder.embed_with_spans(texts, spans)[1]
    transformer = real_embedder.model[0].auto_model
    try:
        transformer.train()
        np.testing.assert_allclose(real_embedder.embed_batch(texts), expected, atol=1e-5)
        transformer.train()
        for got, want in zip(real_embedder.embed_with_spans(texts, spans)[1], expected_spans, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)
    finally:
        real_embedder.model.eval()
