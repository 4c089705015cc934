"""A cluster build's plan and stream, without a cluster: the writer tells a `SegmentedEmbedder`
exactly the documents it must embed, segment by segment (none on a build with nothing to do),
each segment asks only for its own texts that a layout of the plan's documents finds (what the
cluster's workers compute), and `SegmentStream` holds one segment's vectors at a time."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.cluster.streaming import ClusterModeError, EmbeddedBatch, SegmentStream
from index.embedding import Embedder, HashingEmbedder, SegmentedEmbedder, Vectors
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.building import chunk_layout, text_key
from index.write.writer import IndexWriter


@dataclass
class PlannedHashing:
    """A `SegmentedEmbedder` over HashingEmbedder that records each plan and what each of its
    segments is asked for, and checks the asks against the plan's own layout."""

    inner: HashingEmbedder = field(default_factory=HashingEmbedder)
    plans: list[list[list[str]]] = field(default_factory=list)  # per plan, per segment: document ids
    asked: list[str] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        raise AssertionError("the writer embeds through the plan's segments")

    def segments(
        self,
        groups: Sequence[Sequence[Document]],
        known: Collection[str],
        settings: IndexSettings,
        with_sentences: bool,
    ) -> Iterator[Embedder]:
        self.plans.append([[d.id for d in group] for group in groups])
        for group in groups:
            layout = chunk_layout(group, self.count_tokens, settings, with_sentences)
            planned = {text_key(t) for t in layout.texts_to_embed()} - set(known)
            segment = _Asked(self.inner, planned)
            yield segment
            assert segment.asked == planned, "a segment asks for exactly its unknown texts"
            self.asked += sorted(segment.asked)


@dataclass
class _Asked:
    inner: HashingEmbedder
    planned: set[str]
    asked: set[str] = field(default_factory=set)

    model_name = property(lambda self: self.inner.model_name)
    dimension = property(lambda self: self.inner.dimension)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        keys = {text_key(text) for text in texts}
        assert keys <= self.planned, "asked for a text outside its segment's plan"
        self.asked |= keys
        return self.inner.embed_batch(texts)


@dataclass
class Counting:
    inner: HashingEmbedder = field(default_factory=HashingEmbedder)
    embedded: int = 0
    model_name = property(lambda self: self.inner.model_name)
    dimension = property(lambda self: self.inner.dimension)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.embedded += len(texts)
        return self.inner.embed_batch(texts)


def writer(root: Path, embedder: Embedder, segment_documents: int = 3) -> IndexWriter:
    return IndexWriter(
        IndexStore(root), embedder, settings=IndexSettings(), segment_documents=segment_documents
    )


def test_the_writer_plans_only_what_it_embeds(tmp_path: Path, bundled_documents: list[Document]) -> None:
    planned, counting = PlannedHashing(), Counting()
    assert isinstance(planned, SegmentedEmbedder) and not isinstance(counting, SegmentedEmbedder)
    documents = sorted(bundled_documents, key=lambda d: d.id)
    first = writer(tmp_path / "planned", planned).sync(documents)
    writer(tmp_path / "plain", counting).sync(documents)
    ids = [d.id for d in documents]
    assert planned.plans == [[ids[begin : begin + 3] for begin in range(0, len(ids), 3)]]
    assert len(planned.asked) == counting.embedded  # the texts a build on one machine embeds

    again = writer(tmp_path / "planned", planned).sync(documents)
    assert not again.changed and len(planned.plans) == 1, "nothing to do: no plan, nothing embedded"

    changed = replace(documents[0], text=documents[0].text + " One more sentence here.")
    added = Document(id="zz-new", title="New", text="A new document. It has two sentences.")
    edited = [changed, *documents[1:], added]
    before = len(planned.asked), counting.embedded
    third = writer(tmp_path / "planned", planned).sync(edited)
    writer(tmp_path / "plain", counting).sync(edited)
    assert third.replaced == [changed.id] and third.added == [added.id]
    assert planned.plans[-1] == [[changed.id, added.id]]
    assert len(planned.asked) - before[0] == counting.embedded - before[1] > 0
    one, other = (
        IndexReader.open(IndexStore(tmp_path / "planned")),
        IndexReader.open(IndexStore(tmp_path / "plain")),
    )
    assert first.reader.document_count == len(documents)
    for a, b in zip(one.segments, other.segments, strict=True):
        np.testing.assert_array_equal(
            a.chunk_vectors(np.arange(a.chunk_count)), b.chunk_vectors(np.arange(b.chunk_count))
        )


def batch(rows: list[tuple[int, str]]) -> EmbeddedBatch:
    vectors = np.array([[float(len(key)), float(segment)] for segment, key in rows], dtype=np.float32)
    return EmbeddedBatch(
        np.array([s for s, _ in rows], dtype=np.int64), [k for _, k in rows], vectors, ["n1"] * len(rows)
    )


def test_the_stream_holds_one_segment_at_a_time() -> None:
    batches = [
        batch([(0, "a"), (0, "bb"), (0, "a")]),  # "a" twice: two layout batches of one segment
        batch([(0, "ccc"), (1, "d")]),
        batch([(1, "ee")]),
        batch([(2, "f")]),
    ]
    stream = SegmentStream(iter(batches))
    np.testing.assert_array_equal(stream.take(0, ["ccc", "a"]), [[3.0, 0.0], [1.0, 0.0]])
    assert stream.held == 2  # "bb" and the next segment's "d"
    np.testing.assert_array_equal(stream.take(0, ["bb"]), [[2.0, 0.0]])
    stream.finish(0)
    assert stream.take(1, ["ee", "d"]).shape == (2, 2)
    stream.finish(1)
    assert stream.take(2, ["f"]).shape == (1, 2)
    assert stream.held == 0 and stream.peak == 4 and stream.embedded == 7 and stream.nodes == {"n1"}


def test_a_text_the_stream_passed_or_never_had_is_an_error() -> None:
    stream = SegmentStream(iter([batch([(0, "a")]), batch([(1, "b")])]))
    with pytest.raises(ClusterModeError, match="did not embed 1 text"):
        stream.take(0, ["a", "missing"])
    with pytest.raises(ClusterModeError, match="did not embed 1 text"):
        stream.take(1, ["b", "missing"])
