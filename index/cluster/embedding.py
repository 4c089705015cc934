"""The embedding of a build on a Ray cluster with Ray Data, streamed to the writer segment by segment.

`ClusterEmbedder` is the `Embedder` the ordinary writer (`index.write.writer`) builds with, so a
cluster build commits through the same protocol as any build and writes an ordinary index. It is
a `SegmentedEmbedder` (`index.embedding`): before embedding anything the writer hands it the
build's plan, the documents of each segment it is about to write and the text keys it already
holds vectors for. The plan holds only what the writer must embed (documents the index holds
unchanged are not in it: the writer keeps them, or reuses their vectors), so the cluster embeds
what a one-machine build would, and a build with nothing to do runs no pipeline.

The pipeline, run once per plan and started by the writer's first request for a vector:
documents (JSON rows tagged with their segment, in plan order) -> `map_batches` laying each
batch out as a build does (`index.write.building.chunk_layout`, the tokenizer cached once per
worker process) and keeping its distinct texts the writer has no vector for -> `map_batches` over
an actor pool of `actors` embedding actors, one model each, spread over the nodes
(Ray Data's default SPREAD scheduling), in forward passes as large as `embed_batch_size` chooses
for the model -> `iter_batches` on the driver, in plan order (`preserve_order`), into a `SegmentStream`
(`index.cluster.streaming`) that hands each segment's vectors to the writer as it builds it.

Memory on the driver: the stream holds at most one segment's vectors (`SEGMENT_DOCUMENTS`
documents; ~8 KB per chunk with 384-dimension vectors and standalone sentence vectors, ~1 + 4.24
texts per chunk) plus the output of one pipeline task, which ends it, and Ray Data prefetches one
more such block: a task lays out and embeds one block of at most DOCUMENTS_PER_LAYOUT_BATCH
documents. `ClusterEmbedder.peak_held` reports the stream's part. Beside it the writer
holds what it needs to build that segment, as on one machine; never the whole build's vectors.
Blocks Ray Data computed ahead wait in the object store (bounded by its backpressure), not in
the driver's heap. The documents are read and held by the driver (`corpus/`) and copied once into
the object store; the text keys the writer already holds vectors for (a re-index under new text
settings reuses them) go to the workers as one sorted array, 32 bytes per key.

The vectors are the model's own: only the batches differ from a build on one machine, which
changes them by float rounding, not the rankings (tests/cluster). Out of scope: contextual
sentence vectors (RAG_SENTENCE_VECTORS=contextual: a `ClusterModeError` before any work), reading
the corpus on the nodes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import ray

from corpus import Document
from index.cluster.streaming import ClusterModeError, EmbeddedBatch, SegmentStream, StreamedSegment
from index.embedding import Embedder, SentenceTransformerEmbedder, Vectors
from index.settings import IndexSettings, SentenceVectors
from index.write.building import chunk_layout, text_key

__all__ = ["ClusterEmbedder", "ClusterModeError", "embed_batch_size"]

DOCUMENTS_PER_LAYOUT_BATCH = 32
TOKENS_PER_EMBED_BATCH = 16_384  # padded word pieces per forward pass: 64 texts of 256 for MiniLM
KeyArray = npt.NDArray[np.bytes_]


def embed_batch_size(max_tokens: int) -> int:
    """Texts per forward pass for a model reading at most `max_tokens` word pieces: a fixed
    budget of padded tokens, so long-input models take smaller batches (memory stays bounded)."""
    return max(8, min(256, TOKENS_PER_EMBED_BATCH // max(max_tokens, 1)))


@functools.lru_cache(maxsize=2)
def _tokenizer_model(location: str | None) -> SentenceTransformerEmbedder:
    """The model whose tokenizer counts chunk lengths, loaded once per worker process."""
    return SentenceTransformerEmbedder(location)


@functools.lru_cache(maxsize=1)
def _known_keys(reference: ray.ObjectRef[KeyArray] | None) -> KeyArray | None:
    """The plan's known text keys, fetched once per worker process (zero-copy on its node)."""
    return None if reference is None else ray.get(reference)


def _unknown(keys: list[str], known: KeyArray | None) -> list[str]:
    if known is None or not len(known) or not keys:
        return keys
    wanted = np.asarray(keys, dtype=known.dtype)
    found = known[np.minimum(np.searchsorted(known, wanted), len(known) - 1)] == wanted
    return [key for key, seen in zip(keys, found, strict=True) if not seen]


def _layout_batch(
    batch: dict[str, Any],
    model: str | None,
    settings: dict[str, Any],
    with_sentences: bool,
    known: ray.ObjectRef[KeyArray] | None,
) -> pa.Table:
    """A batch of documents (JSON, tagged with their segment) -> per segment, its distinct texts
    the writer has no vector for, longest first so the embedding batches cut from them pad little."""
    count_tokens = _tokenizer_model(model).count_tokens
    index_settings = IndexSettings.from_dict(settings)
    by_segment: dict[int, list[Document]] = {}
    for segment, row in zip(batch["segment"], batch["document"], strict=True):
        by_segment.setdefault(int(segment), []).append(Document(**json.loads(row)))
    segments: list[int] = []
    keys: list[str] = []
    texts: list[str] = []
    for segment, documents in by_segment.items():  # in plan order: rows arrive in it
        layout = chunk_layout(documents, count_tokens, index_settings, with_sentences)
        text_of = {text_key(text): text for text in layout.texts_to_embed()}
        fresh = sorted(
            _unknown(list(text_of), _known_keys(known)), key=lambda k: len(text_of[k]), reverse=True
        )
        segments += [segment] * len(fresh)
        keys += fresh
        texts += [text_of[key] for key in fresh]
    return pa.table(
        {
            "segment": pa.array(segments, pa.int64()),
            "key": pa.array(keys, pa.string()),
            "text": pa.array(texts, pa.string()),
        }
    )


class _EmbeddingActor:
    """One model, loaded once; embeds each batch of texts it is handed."""

    def __init__(self, model: str | None) -> None:
        self.embedder = SentenceTransformerEmbedder(model)
        self.embedder.batch_size = embed_batch_size(self.embedder.max_tokens)  # texts per forward pass
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(text) for text in batch["text"]]
        vectors = (
            self.embedder.embed_batch(texts)
            if texts
            else np.zeros((0, self.embedder.dimension), dtype=np.float32)
        )
        return {
            "segment": batch["segment"],
            "key": batch["key"],
            "vector": vectors,
            "node": [self.node] * len(texts),
        }


def embedded_batches(
    groups: Sequence[Sequence[Document]],
    known: Collection[str],
    *,
    model: str | None,
    settings: IndexSettings,
    with_sentences: bool,
    actors: int,
) -> Generator[EmbeddedBatch, None, None]:
    """The vectors of every text of `groups` (a build's segments) not in `known`, computed on the
    cluster this process is attached to (`index.cluster.connect.connected`), in plan order."""
    import ray.data

    rows = [
        {"segment": segment, "document": json.dumps(document.to_dict(), ensure_ascii=False)}
        for segment, group in enumerate(groups)
        for document in group
    ]
    if not rows:
        return
    # A block per layout batch, and each step takes whole blocks (batch_size=None: a batch size
    # would make Ray Data bundle blocks up to it): a task's output, what the driver takes at a
    # time, is one block's texts. At least a block per actor (a pool larger than its input is an
    # error in Ray Data's eyes). The actors cut each block into forward passes themselves.
    blocks = min(len(rows), max(actors, -(-len(rows) // DOCUMENTS_PER_LAYOUT_BATCH)))
    known_ref = ray.put(np.array(sorted(known), dtype="S32")) if known else None
    dataset = (
        ray.data.from_items(rows, override_num_blocks=blocks)
        .map_batches(
            functools.partial(
                _layout_batch,
                model=model,
                settings=settings.to_dict(),
                with_sentences=with_sentences,
                known=known_ref,
            ),
            batch_size=None,
        )
        .map_batches(
            _EmbeddingActor,
            fn_constructor_kwargs={"model": model},
            compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, blocks))),
            batch_size=None,
            num_cpus=1,
        )
    )
    del rows  # the object store holds them now
    # The stream hands vectors over segment by segment: it needs every row of a segment before
    # any of the next (`index.cluster.streaming`). This dataset's own context: nothing else changes.
    dataset.context.execution_options.preserve_order = True
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        yield EmbeddedBatch(
            np.asarray(batch["segment"], dtype=np.int64),
            [str(key) for key in batch["key"]],
            np.asarray(batch["vector"], dtype=np.float32),
            [str(node) for node in batch["node"]],
        )


@dataclass
class ClusterEmbedder:
    """An `Embedder` whose vectors come from the cluster, one plan (`segments`) at a time; chunk
    lengths and the model's name and dimension come from the local model, the same one the
    actors load. `embedded` counts the texts the cluster embedded, `nodes` the nodes whose actors
    did, `peak_held` the most vectors the driver held at once, over every plan so far."""

    model: str | None
    settings: IndexSettings
    actors: int
    local: SentenceTransformerEmbedder = field(init=False)
    embedded: int = field(init=False, default=0)
    peak_held: int = field(init=False, default=0)
    nodes: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        _refuse_contextual(self.settings)
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
        """Only a plan's segments are embedded on the cluster (`segments`)."""
        raise ClusterModeError(
            f"asked for {len(texts)} vector(s) outside a build's plan: the cluster embeds builds only"
        )

    def segments(
        self,
        groups: Sequence[Sequence[Document]],
        known: Collection[str],
        settings: IndexSettings,
        with_sentences: bool,
    ) -> Iterator[Embedder]:
        _refuse_contextual(settings)
        batches = embedded_batches(
            groups,
            known,
            model=self.model,
            settings=settings,
            with_sentences=with_sentences,
            actors=self.actors,
        )
        stream = SegmentStream(batches)
        try:
            for segment in range(len(groups)):
                yield StreamedSegment(self.local, stream, segment)
                stream.finish(segment)
        finally:
            batches.close()  # a build that stopped early stops reading the pipeline
            self.embedded += stream.embedded
            self.peak_held = max(self.peak_held, stream.peak)
            self.nodes |= stream.nodes


def _refuse_contextual(settings: IndexSettings) -> None:
    if settings.sentence_vectors == SentenceVectors.CONTEXTUAL:
        raise ClusterModeError(
            "a cluster build embeds answer sentences on their own: set "
            "RAG_SENTENCE_VECTORS=standalone (contextual vectors are not supported in cluster "
            "mode yet); nothing was built"
        )
