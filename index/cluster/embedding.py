"""The embedding of a build, on a Ray cluster with Ray Data, and the embedder that serves it.

The pipeline: documents (read and parsed by the driver, `corpus/`) -> `map_batches` laying each
batch of documents out as a build does (`index.write.building.chunk_layout`: chunks, passages,
sentences; the tokenizer cached once per worker process) -> `map_batches` over an actor pool of
`concurrency=actors` embedding actors, one model each, spread over the nodes (Ray Data's default SPREAD scheduling), each batch as large
as `embed_batch_size` chooses for the model -> gathered by the driver into text key -> vector.

`ClusterEmbedder` is an `Embedder` over those vectors: the ordinary writer builds with it, so
the writer chunks once more on the driver (cheap beside embedding: a tokenizer pass; see
docs/scale.md) and finds every text it asks for already embedded; commits go through the same
protocol as any build. The vectors are the model's own: only the batches differ from a build on
one machine, which changes them by float rounding, not the rankings (tests/cluster).

The pipeline runs when the writer first asks for a vector, so a build with nothing to do embeds
nothing; it then embeds all the documents it was given (it does not skip those the index already
holds). Out of scope: contextual sentence vectors (RAG_SENTENCE_VECTORS=contextual: a
`ClusterModeError` before any work), reading the corpus on the nodes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from corpus import Document
from index.embedding import SentenceTransformerEmbedder, Vectors
from index.errors import IndexError_
from index.settings import IndexSettings, SentenceVectors
from index.write.building import chunk_layout, text_key

DOCUMENTS_PER_LAYOUT_BATCH = 32
TOKENS_PER_EMBED_BATCH = 16_384  # padded word pieces per forward pass: 64 texts of 256 for MiniLM


class ClusterModeError(IndexError_):
    """A build the cluster cannot run as asked, or that did not embed what the writer needs."""


def embed_batch_size(max_tokens: int) -> int:
    """Texts per forward pass for a model reading at most `max_tokens` word pieces: a fixed
    budget of padded tokens, so long-input models take smaller batches (memory stays bounded)."""
    return max(8, min(256, TOKENS_PER_EMBED_BATCH // max(max_tokens, 1)))


@functools.lru_cache(maxsize=2)
def _tokenizer_model(location: str | None) -> SentenceTransformerEmbedder:
    """The model whose tokenizer counts chunk lengths, loaded once per worker process."""
    return SentenceTransformerEmbedder(location)


def _layout_batch(
    batch: dict[str, Any], model: str | None, settings: dict[str, Any], with_sentences: bool
) -> dict[str, Any]:
    """A batch of documents (JSON) -> its distinct texts to embed, longest first so the embedding
    batches cut from them pad little."""
    documents = [Document(**json.loads(row)) for row in batch["document"]]
    layout = chunk_layout(
        documents, _tokenizer_model(model).count_tokens, IndexSettings.from_dict(settings), with_sentences
    )
    texts = {text_key(text): text for text in layout.texts_to_embed()}
    keys = sorted(texts, key=lambda key: len(texts[key]), reverse=True)
    return {"key": keys, "text": [texts[key] for key in keys]}


class _EmbeddingActor:
    """One model, loaded once; embeds each batch of texts it is handed."""

    def __init__(self, model: str | None) -> None:
        self.embedder = SentenceTransformerEmbedder(model)
        self.embedder.batch_size = embed_batch_size(self.embedder.max_tokens)  # one pass per batch
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors = self.embedder.embed_batch([str(text) for text in batch["text"]])
        return {"key": batch["key"], "vector": vectors, "node": [self.node] * len(vectors)}


def embed_documents(
    documents: Sequence[Document],
    *,
    model: str | None,
    settings: IndexSettings,
    actors: int,
    with_sentences: bool = True,
) -> tuple[dict[str, Vectors], set[str]]:
    """Text key -> vector for every text a build of `documents` embeds, computed on the cluster
    this process is attached to (`index.cluster.connect.connected`); and the ids of the nodes
    whose actors embedded them."""
    import ray.data

    probe = SentenceTransformerEmbedder(model)
    batch_size = embed_batch_size(probe.max_tokens)
    rows = [{"document": json.dumps(document.to_dict(), ensure_ascii=False)} for document in documents]
    # At least a block per actor (a pool larger than its input is an error in Ray Data's eyes).
    blocks = min(len(rows), max(actors, len(rows) // DOCUMENTS_PER_LAYOUT_BATCH))
    dataset = (
        ray.data.from_items(rows, override_num_blocks=max(blocks, 1))
        .map_batches(
            functools.partial(
                _layout_batch, model=model, settings=settings.to_dict(), with_sentences=with_sentences
            ),
            batch_size=DOCUMENTS_PER_LAYOUT_BATCH,
        )
        .map_batches(
            _EmbeddingActor,
            fn_constructor_kwargs={"model": model},
            concurrency=max(1, min(actors, blocks)),
            batch_size=batch_size,
            num_cpus=1,
        )
    )
    vectors: dict[str, Vectors] = {}
    nodes: set[str] = set()
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        vectors.update(zip((str(key) for key in batch["key"]), np.asarray(batch["vector"]), strict=True))
        nodes.update(str(node) for node in batch["node"])
    return vectors, nodes


@dataclass
class ClusterEmbedder:
    """An `Embedder` whose vectors come from the cluster (`embed_documents`, run on the first
    `embed_batch`); chunk lengths and the model's name and dimension come from the local model,
    the same one the actors load."""

    documents: Sequence[Document]
    model: str | None
    settings: IndexSettings
    actors: int
    with_sentences: bool = True
    local: SentenceTransformerEmbedder = field(init=False)
    vectors: dict[str, Vectors] | None = field(init=False, default=None)
    nodes: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        if self.settings.sentence_vectors == SentenceVectors.CONTEXTUAL:
            raise ClusterModeError(
                "a cluster build embeds answer sentences on their own: set "
                "RAG_SENTENCE_VECTORS=standalone (contextual vectors are not supported in cluster "
                "mode yet); nothing was built"
            )
        self.local = SentenceTransformerEmbedder(self.model)

    @property
    def model_name(self) -> str:
        return self.local.model_name

    @property
    def dimension(self) -> int:
        return self.local.dimension

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if self.vectors is None:
            self.vectors, self.nodes = embed_documents(
                self.documents,
                model=self.model,
                settings=self.settings,
                actors=self.actors,
                with_sentences=self.with_sentences,
            )
        missing = [text for text in texts if text_key(text) not in self.vectors]
        if missing:
            raise ClusterModeError(
                f"the cluster did not embed {len(missing)} text(s) the build needs (the first: "
                f"{missing[0][:80]!r}); nothing was committed"
            )
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.vectors[text_key(text)] for text in texts]).astype(np.float32)
