"""The names every surface shares: retrieval modes and fusion methods.

Standard library only, so that the HTTP client and the API schemas can use them without importing
the index (numpy, FAISS, the model). Members are `StrEnum`s: each equals its string value, which
is what JSON, the CLI and settings carry.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """How passages are ranked: both signals fused, or one alone."""

    HYBRID = "hybrid"  # dense and BM25 fused (the default and best overall)
    DENSE = "dense"  # embedding cosine only: meaning
    BM25 = "bm25"  # keyword BM25 only: words


class FusionMethod(StrEnum):
    """How hybrid mode fuses the dense and BM25 rankings (`index.search.fusion`)."""

    CONVEX = "convex"  # weighted sum of normalised scores
    RRF = "rrf"  # reciprocal rank fusion
