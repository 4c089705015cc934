"""Group commit: concurrent writes share one commit, each with its own result; merges take their
turn among the writers; back-pressure keeps the segment count under the ceiling; an optimize
names the commit that holds its merge."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus import Document
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.changes import Delete, MissingDocumentsError, Upsert, WriteResult
from index.write.group_commit import GroupCommit
from index.write.merging import TieredMergePolicy
from index.write.writer import IndexWriter
from service.engine import Engine
from tests.conftest import make_settings


def note(number: int, text: str = "") -> Document:
    return Document(id=f"note-{number:04d}", title=f"Note {number}", text=text or f"Note {number} on trade.")


def test_changes_arriving_during_a_commit_go_into_the_next_one_together() -> None:
    first_commit_started, release_first = threading.Event(), threading.Event()
    groups: list[list[int]] = []

    def commit(changes: Sequence[int]) -> list[object]:
        groups.append(list(changes))
        if len(groups) == 1:
            first_commit_started.set()
            release_first.wait(10)
        return [ValueError(f"odd {c}") if c % 2 else c * 10 for c in changes]

    queue: GroupCommit[int, int] = GroupCommit(commit)
    outcomes: dict[int, object] = {}

    def submit(change: int) -> None:
        try:
            outcomes[change] = queue.submit(change)
        except ValueError as error:
            outcomes[change] = str(error)

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    assert first_commit_started.wait(10)
    others = [threading.Thread(target=submit, args=(n,)) for n in range(1, 8)]
    for thread in others:
        thread.start()
    while len(queue._waiting) < 7:  # all seven queued behind the first commit
        threading.Event().wait(0.005)
    release_first.set()
    for thread in [first, *others]:
        thread.join(10)
    assert groups == [[0], [1, 2, 3, 4, 5, 6, 7]]
    assert queue.groups == 2
    assert outcomes == {n: (f"odd {n}" if n % 2 else n * 10) for n in range(8)}  # each its own


def test_a_commit_that_fails_fails_every_change_of_its_group_and_the_queue_goes_on() -> None:
    calls = 0

    def commit(changes: Sequence[str]) -> list[object]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(28, "No space left on device")
        return list(changes)

    queue: GroupCommit[str, str] = GroupCommit(commit)
    with pytest.raises(OSError, match="No space"):
        queue.submit("a")
    assert queue.submit("b") == "b"


def test_one_commit_applies_many_changes_each_with_its_own_result(tmp_path: Path) -> None:
    writer = IndexWriter(IndexStore(tmp_path), HashingEmbedder(), settings=IndexSettings())
    writer.upsert([note(1), note(2), note(3)])
    before = writer.store.current()
    assert before is not None
    results = writer.apply(
        [
            Upsert((note(4), note(1, "Note 1, revised."))),
            Delete(("note-0002",)),
            Delete(("note-0099",)),  # not there: this change alone fails
            Upsert((note(5),)),
            Delete(("note-0005",)),  # added and removed in the same group: never written
            Upsert((note(3),)),  # as indexed already
            Delete(("note-0002",)),  # removed by an earlier change of the group
        ]
    )
    after = writer.store.current()
    assert after is not None and after.generation == before.generation + 1  # one commit
    assert len(after.segments) == len(before.segments) + 1  # one new segment
    first, removed, missing, added, removed_again, unchanged, missing_again = results
    assert isinstance(first, WriteResult) and first.added == ["note-0004"] and first.replaced == ["note-0001"]
    assert isinstance(removed, WriteResult) and removed.removed == ["note-0002"]
    assert isinstance(missing, MissingDocumentsError) and missing.document_ids == ["note-0099"]
    assert isinstance(added, WriteResult) and added.added == ["note-0005"]
    assert isinstance(removed_again, WriteResult) and removed_again.removed == ["note-0005"]
    assert (
        isinstance(unchanged, WriteResult) and unchanged.unchanged == ["note-0003"] and not unchanged.changed
    )
    assert isinstance(missing_again, MissingDocumentsError)
    reader = first.reader
    assert reader.commit.generation == after.generation  # every result names the commit holding it
    assert sorted(d.id for d in reader.documents()) == ["note-0001", "note-0003", "note-0004"]
    assert reader.document("note-0001").text == "Note 1, revised."  # type: ignore[union-attr]
    assert reader.commit.segments[-1].documents == 2  # note-0004 and the new note-0001 only


def test_concurrent_writers_share_commits_and_lose_nothing(tmp_path: Path) -> None:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    engine.upsert([note(0)])
    start = engine.retriever.reader.commit.generation
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: engine.upsert([note(n)]), range(1, 201)))
    assert all(result.added == [f"note-{n:04d}"] for n, result in zip(range(1, 201), results, strict=True))
    reader = engine.retriever.reader
    assert reader.document_count == 201
    assert reader.commit.generation - start < 200  # writes were grouped
    for result in results:  # each acknowledged with a commit that holds it
        assert result.reader.commit.generation > start


def test_writers_wait_for_merges_at_the_segment_ceiling(tmp_path: Path) -> None:
    policy = TieredMergePolicy(segments_per_tier=2, max_merge_at_once=2, backlog_segments=2)
    writer = IndexWriter(
        IndexStore(tmp_path), HashingEmbedder(), settings=IndexSettings(), merge_policy=policy
    )
    seen = []
    for number in range(40):  # no background merges at all: only back-pressure merges
        writer.upsert([note(number)])
        commit = writer.store.current()
        assert commit is not None
        seen.append(len(commit.segments))
        assert len(commit.segments) <= policy.ceiling(commit.segments)
    assert max(seen) == policy.ceiling(writer.store.current().segments)  # type: ignore[union-attr]
    reader = writer._reopen()
    assert sorted(d.id for d in reader.documents()) == [f"note-{n:04d}" for n in range(40)]


def test_concurrent_optimizes_each_name_the_merged_commit(tmp_path: Path) -> None:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    for number in range(6):
        engine.upsert([note(number)])
    assert len(engine.retriever.reader.segments) == 6
    with ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(lambda _: engine.merge(force=True), range(5)))
    final = engine.retriever.reader
    assert len(final.segments) == 1
    assert sum(len(outcome.results) for outcome in outcomes) == 1
    for outcome in outcomes:
        assert outcome.reader is not None
        assert len(outcome.reader.segments) == 1
        assert outcome.reader.commit.generation <= final.commit.generation
        assert outcome.reader.document_count == 6


def test_a_merge_commits_among_concurrent_writers(tmp_path: Path) -> None:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    for number in range(12):
        engine.upsert([note(number)])
    stop = threading.Event()

    def keep_writing(offset: int) -> None:
        number = offset
        while not stop.is_set():
            engine.upsert([note(number)])
            number += 4

    writers = [threading.Thread(target=keep_writing, args=(1000 + n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    try:
        outcome = engine.merge(force=True)
    finally:
        stop.set()
        for thread in writers:
            thread.join(30)
    assert len(outcome.results) == 1  # not starved, not discarded forever
    live = engine.retriever.reader
    assert live.document("note-0000") is not None and live.document_count >= 12
