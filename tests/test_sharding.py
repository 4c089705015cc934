"""Sharding: the hash rule, the folder and its manifest, writes routed to their shard, and what a
query sees while a write is being applied across shards."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import Document
from index.embedding import HashingEmbedder
from index.errors import IndexCorruptError, ShardCountMismatchError, ShardLayoutError
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.sharding.assignment import shard_of
from index.sharding.coordinator import ShardedSearcher
from index.sharding.layout import MANIFEST, Manifest, ShardedLayout
from index.sharding.messages import CandidateRequest
from index.sharding.shard import KEPT_READERS, Shard, ShardVersionGoneError
from index.sharding.writer import ShardedWriter
from index.write.changes import MissingDocumentsError
from index.write.writer import build_index


def test_shard_of_is_the_first_eight_bytes_of_sha256_modulo_the_count() -> None:
    # sha256(b"doc-0") starts bd45690cb1c5ea92 (big-endian: 13638422549804477074), even, so
    # shard 0 of 2, and 3 * 4546140849934825691 + 1, so shard 1 of 3.
    assert 0xBD45690CB1C5EA92 == 13638422549804477074 == 3 * 4546140849934825691 + 1
    assert [shard_of("doc-0", n) for n in (1, 2, 3)] == [0, 0, 1]
    # sha256(b"doc-1") starts bb0e4f49443794d9 = 13478797910862173401 = 3 * 4492932636954057800 + 1
    assert 0xBB0E4F49443794D9 == 3 * 4492932636954057800 + 1
    assert [shard_of("doc-1", n) for n in (1, 2, 3)] == [0, 1, 1]
    with pytest.raises(ValueError, match="at least one shard"):
        shard_of("doc-0", 0)


def test_every_shard_gets_documents() -> None:
    counts = [0, 0, 0, 0]
    for n in range(400):
        counts[shard_of(f"doc-{n}", 4)] += 1
    assert all(60 < count < 140 for count in counts)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@settings(max_examples=25, deadline=None)
@given(shard_count=st.integers(1, 64), other=st.integers(1, 64))
def test_the_manifest_reads_back_exactly_and_guards_the_shard_count(shard_count: int, other: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "sharded"
        created = ShardedLayout.open_or_create(root, shard_count)
        assert ShardedLayout.open(root) == created
        assert ShardedLayout.open(root).manifest == Manifest(shard_count)
        assert ShardedLayout.open_or_create(root, shard_count).manifest == Manifest(shard_count)
        before = tree(root)
        if other != shard_count:
            with pytest.raises(ShardCountMismatchError, match=f"has {shard_count} shards but {other}"):
                ShardedLayout.open_or_create(root, other)
            with pytest.raises(ShardCountMismatchError):
                ShardedLayout.open(root, other)
        assert tree(root) == before  # nothing written


def test_a_shard_count_mismatch_stops_before_any_write(tmp_path: Path) -> None:
    documents = [Document(id=f"doc-{n}", text=f"Report {n} on trade.") for n in range(5)]
    layout = ShardedLayout.open_or_create(tmp_path, 2)
    ShardedWriter(layout, HashingEmbedder(), settings=IndexSettings()).upsert(documents)
    before = tree(tmp_path)
    with pytest.raises(ShardCountMismatchError):
        ShardedLayout.open_or_create(tmp_path, 3)
    assert tree(tmp_path) == before


def test_a_damaged_or_foreign_folder_is_refused(tmp_path: Path) -> None:
    ShardedLayout.open_or_create(tmp_path / "a", 2)
    path = tmp_path / "a" / MANIFEST
    path.write_text(path.read_text().replace('"shard_count": 2', '"shard_count": 3'))
    with pytest.raises(IndexCorruptError, match="checksum mismatch"):
        ShardedLayout.open(tmp_path / "a")
    (tmp_path / "b" / "shard-0").mkdir(parents=True)
    with pytest.raises(ShardLayoutError, match="no manifest"):
        ShardedLayout.open_or_create(tmp_path / "b", 2)
    build_index(
        tmp_path / "c", [Document(id="d", text="Trade.")], HashingEmbedder(), settings=IndexSettings()
    )
    with pytest.raises(ShardLayoutError, match="ordinary index"):
        ShardedLayout.open_or_create(tmp_path / "c", 2)


def shard_documents(layout: ShardedLayout) -> list[set[str]]:
    return [set(IndexReader.open(store).document_ids()) for store in layout.stores()]


def test_writes_go_to_the_owning_shard(tmp_path: Path) -> None:
    layout = ShardedLayout.open_or_create(tmp_path, 3)
    writer = ShardedWriter(layout, HashingEmbedder(), settings=IndexSettings())
    documents = [Document(id=f"doc-{n}", text=f"Report {n} on gas and trade.") for n in range(12)]
    result = writer.upsert(documents)
    assert result.added == sorted(d.id for d in documents)
    expected = [{d.id for d in documents if shard_of(d.id, 3) == shard} for shard in range(3)]
    assert shard_documents(layout) == expected
    assert all(expected)  # every shard got some
    # A replacement goes to the same shard; a delete removes from the owner only.
    replaced = writer.upsert([Document(id="doc-4", text="Report 4, rewritten.")])
    assert replaced.replaced == ["doc-4"] and set(replaced.results) == {shard_of("doc-4", 3)}
    removed = writer.delete(["doc-1", "doc-2"])
    assert removed.removed == ["doc-1", "doc-2"]
    expected = [ids - {"doc-1", "doc-2"} for ids in expected]
    assert shard_documents(layout) == expected
    # A missing id changes nothing, on any shard.
    versions = [IndexReader.open(store).version for store in layout.stores()]
    with pytest.raises(MissingDocumentsError, match="doc-99"):
        writer.delete(["doc-3", "doc-99"])
    assert [IndexReader.open(store).version for store in layout.stores()] == versions
    assert shard_documents(layout) == expected
    # A build gives each shard its files' documents; exact removes the rest.
    writer.sync(documents[:6], exact=True)
    assert shard_documents(layout) == [
        {d.id for d in documents[:6] if shard_of(d.id, 3) == shard} for shard in range(3)
    ]


def ids_on(count: int) -> tuple[str, str]:
    """Two document ids owned by shards 0 and 1 of `count`."""
    first = next(f"new-{n}" for n in range(100) if shard_of(f"new-{n}", count) == 0)
    second = next(f"new-{n}" for n in range(100) if shard_of(f"new-{n}", count) == 1)
    return first, second


def test_a_query_during_a_write_across_shards_sees_it_on_the_shards_already_committed(
    tmp_path: Path,
) -> None:
    layout = ShardedLayout.open_or_create(tmp_path, 2)
    old = [Document(id=f"doc-{n}", text=f"Report {n} on trade.") for n in range(6)]
    ShardedWriter(layout, HashingEmbedder(), settings=IndexSettings()).upsert(old)
    searcher = ShardedSearcher.open(layout, HashingEmbedder(), RetrievalOptions())
    before = [IndexReader.open(store).version for store in layout.stores()]
    first, second = ids_on(2)
    seen: list[tuple[int, set[str], str]] = []

    def search_now(shard: int, reader: IndexReader) -> None:
        outcome = searcher.search("zeppelin", k=5, mode=Mode.BM25)
        seen.append((shard, {hit.document.id for hit in outcome.hits}, outcome.index_version))

    writer = ShardedWriter(layout, HashingEmbedder(), settings=IndexSettings(), on_shard_commit=search_now)
    new = [Document(id=first, text="A zeppelin over the port."), Document(id=second, text="Zeppelin talks.")]
    writer.upsert(new)
    after = [IndexReader.open(store).version for store in layout.stores()]
    # After shard 0 committed, shard 1 not yet: the first document only, and the version says so.
    assert seen == [(0, {first}, f"{after[0]},{before[1]}"), (1, {first, second}, ",".join(after))]
    assert before[0] != after[0] and before[1] != after[1]


def test_a_shard_answers_a_query_from_the_commit_its_first_call_saw(tmp_path: Path) -> None:
    layout = ShardedLayout.open_or_create(tmp_path, 1)
    writer = ShardedWriter(layout, HashingEmbedder(), settings=IndexSettings())
    writer.upsert([Document(id="doc-0", text="Gas pipeline talks.")])
    shard = Shard(0, layout.store(0))
    state = shard.state(["gas"])
    writer.upsert([Document(id="doc-1", text="Gas deal signed.")])  # lands between the two calls
    request = CandidateRequest(
        state.version,
        HashingEmbedder().embed_batch(["gas"]).reshape(-1),
        ("gas",),
        state.statistics,
        10,
        0.9,
        0.4,
        None,
        True,
        True,
    )
    answer = shard.candidates(request)
    assert answer.version == state.version
    assert {chunk.document_id for chunk in answer.chunks} == {"doc-0"}
    assert shard.state(["gas"]).statistics.chunks == 2  # the next query sees the write
    for n in range(KEPT_READERS):
        writer.upsert([Document(id=f"more-{n}", text="Gas.")])
        shard.state(["gas"])
    with pytest.raises(ShardVersionGoneError):
        shard.candidates(request)
