"""Changing what is indexed, at the cost of the change: upserts, deletes, builds from files, merges.

`apply` commits a group of changes (`index.write.changes`) as one: one small segment holding the
new and changed documents (re-embedding only text not embedded before), the replaced and removed
versions marked deleted in their old segments, and one commit point naming the result; each
change gets its own result. `upsert` and `delete` are groups of one. Everything happens under the
store's write lock, starting from whatever CURRENT names once the lock is held, so writers in one
process or several never lose each other's changes. A write returns once its commit is durable;
an index that exists but cannot be loaded stops it (DamagedIndexError). When the live commit holds
as many segments as the merge policy's ceiling, a write first runs merges (back-pressure).

`sync` is `rag build`. Files are one source among others: the index holds documents added over
HTTP or with `rag add` too, so a build applies the changes made to the files since the last
build (recorded per commit as `sources`: id -> content hash) and leaves the rest alone:

* a file document that is new or changed since the last build is added or replaced;
* a document whose file is gone since the last build is removed, unless another writer has
  changed it since (then it is kept, and reported);
* documents no file holds (added over HTTP, `rag add`) are kept, and reported.

`exact=True` makes the index hold exactly the files' documents instead. A build under another
model, other text-processing settings or another analyser version re-indexes every document the
index holds (reusing vectors where the model is the same); `force=True` re-embeds everything. An
index in the earlier single-generation format is converted by a build (`index.write.legacy`).

`ensure_commit` gives a new index an empty first commit. `restore` makes a snapshot live again,
and `recover` the newest intact commit point when the live one is damaged
(`index.write.restoring`): both are commits like the others, checked first, and neither reads the
live commit, so a damaged index does not stop them.

`merge` runs the merge policy (`index.write.merging`): it picks segments from the live reader
and builds the merged segment without any lock (queries and writes go on), then commits under the
lock, through the caller's `turn` when given (a server's group-commit queue), carrying over
documents deleted from the sources meanwhile. Out of scope: parsing files (corpus/), queueing
concurrent writers (`index.write.group_commit`) and swapping the live reader in a server
(service/engine.py).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Embedder, segment_embedders
from index.errors import IndexCorruptError, IndexMismatchError
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.storage.commits import CommitPoint, SegmentEntry, first_commit
from index.storage.segments import LEXICAL_TEXT, Segment, publish_segment, stage_segment
from index.storage.store import IndexStore
from index.text.analysis import ANALYSER_VERSION
from index.write.building import build_segment_data, known_vectors_of
from index.write.changes import (
    Change,
    Delete,
    MissingDocumentsError,
    Outcome,
    Upsert,
    WriteResult,
    build_target,
    delete_outcome,
    raised,
    same_content,
    upsert_outcome,
)
from index.write.legacy import LegacyIndex
from index.write.merging import TieredMergePolicy, force_merge, merge_segments
from index.write.restoring import Recovery, plan_recovery

NOTHING_CHANGED = "Nothing was changed"
SEGMENT_DOCUMENTS = 10_000  # a large build is written as segments of at most this many documents


@dataclass(frozen=True)
class MergeResult:
    merged: list[str]  # the source segments
    segment: str  # the new one
    documents: int


@dataclass(frozen=True)
class MergeOutcome:
    results: list[MergeResult]
    reader: IndexReader | None  # on the commit holding the merges, or found needing none


CommitTurn = Callable[[Callable[[], Any]], Any]  # runs a commit job in its turn, returns its result


class IndexWriter:
    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        *,
        settings: IndexSettings,
        merge_policy: TieredMergePolicy | None = None,
        segment_documents: int = SEGMENT_DOCUMENTS,
        with_sentences: bool = True,
        show_progress: bool = False,
        on_commit: Callable[[IndexReader], None] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings  # for a new index, and for a build; existing segments keep theirs
        self.merge_policy = merge_policy or TieredMergePolicy()
        self.segment_documents = segment_documents
        self.with_sentences = with_sentences  # False: a ranking-only index (no answer sentences)
        self.show_progress = show_progress
        self.on_commit = on_commit  # told each commit's reader while the lock is still held

    # --- writes -------------------------------------------------------------------------------

    def upsert(self, documents: Sequence[Document], *, live: IndexReader | None = None) -> WriteResult:
        """Add or replace `documents` by id; no commit when all are already indexed as given."""
        return raised(self.apply([Upsert(tuple(documents))], live=live)[0])

    def delete(self, document_ids: Sequence[str], *, live: IndexReader | None = None) -> WriteResult:
        """Remove `document_ids`; MissingDocumentsError (nothing changed) if one is not indexed."""
        return raised(self.apply([Delete(tuple(document_ids))], live=live)[0])

    def apply(
        self, changes: Sequence[Change], *, live: IndexReader | None = None
    ) -> list[WriteResult | MissingDocumentsError]:
        """Apply `changes` in order as ONE commit (group commit): one segment for every document
        they add or replace, one deletes file per touched segment, one switch of CURRENT. Each
        change gets its own result, as if applied alone after the ones before it; a delete of a
        document that is not there (by then) gets MissingDocumentsError and changes nothing, the
        others still apply. No commit when nothing changes. Waits for merges first when the
        commit would hold more segments than the ceiling (`TieredMergePolicy.ceiling`)."""
        with _unchanged_on_damage():
            self._wait_below_ceiling(live)
        with self.store.write_lock(), _unchanged_on_damage():
            commit, reader = self._live(live)
            self._check_model(commit)
            after: dict[str, Document | None] = {}  # id -> the document once the changes so far apply

            def current(document_id: str) -> Document | None:
                if document_id in after:
                    return after[document_id]
                return reader.document(document_id) if reader else None

            outcomes: list[Outcome] = []
            for change in changes:
                if isinstance(change, Upsert):
                    outcomes.append(upsert_outcome(change, current, after))
                else:
                    outcomes.append(delete_outcome(change, current, after))
            before = {i: reader.document(i) if reader else None for i in after}
            written = [d for i, d in after.items() if d is not None and not same_content(d, before[i])]
            removed = [
                i for i, d in after.items() if before[i] is not None and not same_content(d, before[i])
            ]
            if not written and not removed:
                result_reader = reader or self._reopen()
            else:
                segments = self._commit_documents(commit, reader, written, remove=removed)
                result_reader = self._publish(commit, segments, previous=reader)
        return [
            outcome if isinstance(outcome, MissingDocumentsError) else outcome(result_reader)
            for outcome in outcomes
        ]

    def sync(self, documents: Sequence[Document], *, exact: bool = False, force: bool = False) -> WriteResult:
        """`rag build` (see the module docstring)."""
        files = {document.id: document for document in documents}
        with self.store.write_lock(), _unchanged_on_damage():
            legacy = LegacyIndex.find(self.store.root)
            commit, reader = (
                first_commit(self.embedder.model_name, self.embedder.dimension, self.settings),
                None,
            )
            if legacy is None:
                commit, reader = self._live(None, any_model=True)
            before = {
                d.id: d for d in (legacy.documents() if legacy else reader.documents() if reader else [])
            }
            previous = self.store.sources(commit) if reader is not None else {}
            after, kept = build_target(before, files, previous, exact)
            added = sorted(set(after) - set(before))
            removed = sorted(set(before) - set(after))
            replaced = sorted(
                i for i in set(after) & set(before) if after[i].content_hash != before[i].content_hash
            )
            unchanged = sorted(i for i in set(after) & set(before) if i not in replaced)
            sources = {document_id: document.content_hash for document_id, document in files.items()}
            rebuild = _reindex_reason(force, legacy is not None, self._same_index(commit))
            if not rebuild and not (added or removed or replaced) and sources == previous:
                return WriteResult(reader or self._reopen(), False, unchanged=unchanged, kept=kept)
            if rebuild:
                known = {} if force else _known_vectors(legacy, reader, self.embedder)
                fresh = first_commit(self.embedder.model_name, self.embedder.dimension, self.settings)
                commit = replace(fresh, generation=commit.generation)
                segments = self._new_segments(list(after.values()), known, commit.settings)
            else:
                changed = [after[i] for i in added + replaced]
                segments = self._commit_documents(commit, reader, changed, remove=replaced + removed)
            name, checksum = self.store.write_sources(commit.generation + 1, sources)
            result = self._publish(commit, segments, previous=reader, sources=name, sources_sha256=checksum)
            return WriteResult(result, True, added, replaced, removed, unchanged, kept, rebuild)

    # --- merges -------------------------------------------------------------------------------

    def merge(
        self,
        *,
        force: bool = False,
        live: IndexReader | None = None,
        limit: int | None = None,
        turn: CommitTurn | None = None,
    ) -> MergeOutcome:
        """Run the merges the policy asks for (with `force`, into one segment), one at a time,
        until it asks for none (or `limit` merges are done). Segments are picked from `live`
        (or the live commit) and merged without any lock, so queries and writes go on; each
        merge then commits under the lock, through `turn` when given: a server hands merge
        commits to its group-commit queue, so they take their turn among the writers instead of
        polling for the lock."""
        results: list[MergeResult] = []
        while True:
            commit, reader = self._live(live, any_model=True)
            groups = force_merge(commit) if force else self.merge_policy.find_merges(commit.segments)
            if reader is None or not groups:
                return MergeOutcome(results, reader)
            group = set(groups[0])
            picked = [index for index, entry in enumerate(commit.segments) if entry.name in group]
            entries = [commit.segments[index] for index in picked]
            sources = [
                (reader.segments[index], np.array(sorted(reader.deleted_documents[index]), dtype=np.int64))
                for index in picked
            ]
            staged, row_maps = self._stage_merge(sources, commit)
            job = functools.partial(self._commit_merge, entries, sources, staged, row_maps, reader)
            committed = turn(job) if turn is not None else job()
            if committed is None:  # the sources changed under it (another merge, a restore): again
                live = None
                continue
            result, live = committed
            results.append(result)
            if force or (limit is not None and len(results) >= limit):
                return MergeOutcome(results, live)

    def _wait_below_ceiling(self, live: IndexReader | None) -> None:
        """Back-pressure: while the live commit lists as many segments as the merge policy's
        ceiling, the writer waits for merges (runs them) before its commit adds one more. Merges
        are cheap at that point (the segments piling up are small); an index whose segments are
        all too large to merge is let through."""
        while True:
            commit = self._live_commit(live)
            if commit is None or len(commit.segments) < self.merge_policy.ceiling(commit.segments):
                return
            merged = self.merge(live=live, limit=1)
            if not merged.results:
                return
            live = merged.reader

    def _stage_merge(
        self, sources: list[tuple[Segment, npt.NDArray[np.int64]]], commit: CommitPoint
    ) -> tuple[Segment, list[npt.NDArray[np.int64]]]:
        data, row_maps = merge_segments(sources, commit)
        return stage_segment(self.store.segments_dir, data), row_maps

    def _commit_merge(
        self,
        entries: list[SegmentEntry],
        sources: list[tuple[Segment, npt.NDArray[np.int64]]],
        staged: Segment,
        row_maps: list[npt.NDArray[np.int64]],
        previous: IndexReader,
    ) -> tuple[MergeResult, IndexReader] | None:
        with self.store.write_lock(), _unchanged_on_damage():
            commit = self.store.current()
            names = [entry.name for entry in entries]
            live = {entry.name: entry for entry in commit.segments} if commit else {}
            if commit is None or any(name not in live for name in names):
                _discard(staged)
                return None
            deleted_now = [self.store.deleted_rows(live[name]) for name in names]
            # Deletes only grow, except through a restore, which may bring back documents the
            # merge dropped: then the merge is stale and is not committed.
            if any(len(np.setdiff1d(then, now)) for (_, then), now in zip(sources, deleted_now, strict=True)):
                _discard(staged)
                return None
            # Deletes that landed on a source while it was being merged move to the merged rows.
            carried = [
                row_map[np.setdiff1d(now, then)]
                for now, (_, then), row_map in zip(deleted_now, sources, row_maps, strict=True)
            ]
            deleted = np.unique(
                np.concatenate([rows[rows >= 0] for rows in carried] or [np.zeros(0, dtype=np.int64)])
            )
            publish_segment(staged)
            entry = SegmentEntry(staged.name, staged.document_count, staged.chunk_count)
            if len(deleted):
                file_name, checksum = self.store.write_deletes(staged.name, commit.generation + 1, deleted)
                entry = SegmentEntry(
                    entry.name, entry.documents, entry.chunks, file_name, len(deleted), checksum
                )
            position = min(i for i, e in enumerate(commit.segments) if e.name in names)
            others = [e for e in commit.segments if e.name not in names]
            segments = tuple([*others[:position], entry, *others[position:]])
            reader = self._publish(commit, segments, previous=previous)
            return MergeResult(names, staged.name, staged.document_count - len(deleted)), reader

    # --- helpers ------------------------------------------------------------------------------

    def _live(
        self, live: IndexReader | None, any_model: bool = False
    ) -> tuple[CommitPoint, IndexReader | None]:
        """The live commit and a reader on it (None for an index with nothing yet)."""
        commit = self._live_commit(live)
        if live is not None and commit is live.commit:
            return commit, live
        if commit is None:
            return first_commit(self.embedder.model_name, self.embedder.dimension, self.settings), None
        if not any_model:
            self._check_model(commit)
        return commit, IndexReader.open(self.store, live)

    def _live_commit(self, live: IndexReader | None) -> CommitPoint | None:
        """The live commit point: `live`'s own when CURRENT still names it (one small read),
        else read from disk (None: no index yet)."""
        if live is not None and self.store.current_name() == live.commit.file_name:
            return live.commit
        return self.store.current()

    def _reopen(self) -> IndexReader:
        return IndexReader.open(self.store)

    def _check_model(self, commit: CommitPoint) -> None:
        if commit.segments and commit.model_name != self.embedder.model_name:
            raise IndexMismatchError(
                f"the index in {self.store.root} was built with model {commit.model_name!r} but "
                f"{self.embedder.model_name!r} is configured: run `rag build` to re-embed its documents "
                "with the configured model, or configure the index's model"
            )

    def _same_index(self, commit: CommitPoint) -> bool:
        """Whether new segments may sit beside the commit's: same model, same text processing."""
        if not commit.segments:
            return True
        segment = self.store.segment(commit.segments[0].name)
        return (
            commit.model_name == self.embedder.model_name
            and commit.settings.same_text_processing(self.settings)
            and segment.meta.get("analyser") == ANALYSER_VERSION
            and segment.meta.get("lexical_text", 1) == LEXICAL_TEXT
        )

    def _commit_documents(
        self, commit: CommitPoint, reader: IndexReader | None, documents: list[Document], remove: list[str]
    ) -> tuple[SegmentEntry, ...]:
        """The commit's segments with `remove` deleted and one segment for `documents` added."""
        known = _known_vectors_of_documents(reader, [d.id for d in documents]) if reader else {}
        segments = _with_deletes(self.store, commit, reader, set(remove)) if reader else commit.segments
        return segments + self._new_segments(documents, known, commit.settings)

    def _new_segments(
        self, documents: list[Document], known: dict[str, npt.NDArray[np.float32]], settings: IndexSettings
    ) -> tuple[SegmentEntry, ...]:
        entries: list[SegmentEntry] = []
        ordered = sorted(documents, key=lambda d: d.id)
        step = self.segment_documents
        groups = [ordered[begin : begin + step] for begin in range(0, len(ordered), step)]
        # The embedder learns the whole plan first: a remote one embeds ahead of the writer.
        embedders = segment_embedders(self.embedder, groups, known.keys(), settings, self.with_sentences)
        for group, embedder in zip(groups, embedders, strict=True):
            data = build_segment_data(
                group,
                embedder,
                settings,
                known_vectors=known,
                show_progress=self.show_progress,
                with_sentences=self.with_sentences,
            )
            segment = stage_segment(self.store.segments_dir, data)
            publish_segment(segment)
            entries.append(SegmentEntry(segment.name, segment.document_count, segment.chunk_count))
        return tuple(entries)

    def _publish(
        self,
        commit: CommitPoint,
        segments: tuple[SegmentEntry, ...],
        *,
        previous: IndexReader | None = None,
        **changes: object,
    ) -> IndexReader:
        """Commit `segments` as the successor of `commit`; a reader on it, re-using what
        `previous` (the reader the write started from) shares with it."""
        self.store.publish(commit.successor(segments, **changes))
        reader = IndexReader.open(self.store, previous)
        if self.on_commit is not None:
            self.on_commit(reader)
        return reader

    def ensure_commit(self) -> IndexReader:
        """The live index, given a first commit holding nothing when it has no commit yet (what
        a snapshot keeps of a shard nothing was written to); an index with one is left as it is."""
        with self.store.write_lock(), _unchanged_on_damage():
            commit, reader = self._live(None)
            return reader if reader is not None else self._publish(commit, ())

    # --- restores -----------------------------------------------------------------------------

    def restore(self, name: str) -> IndexReader:
        """Make snapshot `name` live again as a new commit, once it and every file it names pass
        their checks (DamagedSnapshotError naming the first that does not: nothing changes). It
        does not read the live commit, so it also goes back from a damaged one."""
        with self.store.write_lock():
            kept = self.store.verified_snapshot(name)
            self.store.link_snapshot(name)
            return self._publish_again(kept)

    def recover(self) -> Recovery:
        """When the live commit is damaged, make the newest intact commit point on disk live
        again and say what that loses (`index.write.restoring`); when it is intact, change nothing."""
        with self.store.write_lock():
            plan = plan_recovery(self.store)
            if plan.damage is None:
                return Recovery(plan, IndexReader.open(self.store))
            if plan.snapshot is not None:
                self.store.link_snapshot(plan.snapshot)
            return Recovery(plan, self._publish_again(plan.commit))

    def _publish_again(self, kept: CommitPoint) -> IndexReader:
        """`kept` live again, as a generation after every commit point on disk: versions only
        go forwards."""
        generation = max(kept.generation, self.store.latest_generation())
        return self._publish(replace(kept, generation=generation), kept.segments)


def build_index(
    root: Path,
    documents: Sequence[Document],
    embedder: Embedder,
    *,
    settings: IndexSettings,
    with_sentences: bool = True,
) -> IndexReader:
    """A new index of `documents` in `root`, built in one go (evaluation, benchmarks, tests)."""
    writer = IndexWriter(IndexStore(root), embedder, settings=settings, with_sentences=with_sentences)
    return writer.sync(documents, exact=True).reader


def _reindex_reason(force: bool, legacy: bool, same_index: bool) -> str:
    if force:
        return "--force"
    if legacy:
        return "converted from the earlier one-directory-per-generation format"
    if not same_index:
        return "the model, the text-processing settings or the analyser changed"
    return ""


def _with_deletes(
    store: IndexStore, commit: CommitPoint, reader: IndexReader, document_ids: set[str]
) -> tuple[SegmentEntry, ...]:
    """The commit's segment entries, with `document_ids` deleted (new deletes files where needed)."""
    rows_by_segment: dict[int, list[int]] = {}
    for document_id in document_ids:
        found = reader.location(document_id)
        if found is not None:
            rows_by_segment.setdefault(found[0], []).append(found[1])
    entries = list(commit.segments)
    for index, rows in rows_by_segment.items():
        entry = entries[index]
        deleted = np.union1d(store.deleted_rows(entry), np.asarray(rows, dtype=np.int64))
        name, checksum = store.write_deletes(entry.name, commit.generation + 1, deleted)
        entries[index] = SegmentEntry(entry.name, entry.documents, entry.chunks, name, len(deleted), checksum)
    return tuple(entry for entry in entries if entry.live_documents)


def _known_vectors_of_documents(
    reader: IndexReader, document_ids: list[str]
) -> dict[str, npt.NDArray[np.float32]]:
    known: dict[str, npt.NDArray[np.float32]] = {}
    for document_id in document_ids:
        found = reader.location(document_id)
        if found is not None:
            known.update(known_vectors_of(reader.segments[found[0]], [found[1]]))
    return known


def _known_vectors(
    legacy: LegacyIndex | None, reader: IndexReader | None, embedder: Embedder
) -> dict[str, npt.NDArray[np.float32]]:
    """Every vector the index holds by text key, when it was embedded with `embedder`'s model."""
    if legacy is not None:
        return legacy.known_vectors() if legacy.model_name == embedder.model_name else {}
    if reader is None or reader.model_name != embedder.model_name:
        return {}
    known: dict[str, npt.NDArray[np.float32]] = {}
    for segment, deleted in zip(reader.segments, reader.deleted_documents, strict=True):
        known.update(
            known_vectors_of(segment, [row for row in range(segment.document_count) if row not in deleted])
        )
    return known


@contextmanager
def _unchanged_on_damage() -> Iterator[None]:
    """A write stopped by a damaged index says that it changed nothing (it committed nothing)."""
    try:
        yield
    except IndexCorruptError as error:
        if str(error).startswith(NOTHING_CHANGED):
            raise
        raise IndexCorruptError(f"{NOTHING_CHANGED}: {error}") from error


def _discard(segment: Segment) -> None:
    shutil.rmtree(segment.directory, ignore_errors=True)
