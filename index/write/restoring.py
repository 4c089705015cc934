"""Going back to the newest intact commit point when the live one is damaged (`rag restore
--last-good`): which one, and what going back to it loses.

`plan_recovery` checks the live commit as a restore checks a snapshot: CURRENT, the commit point
and every file it names against their checksums, and the counts (`IndexStore.verify`). If all
pass there is nothing to do. Otherwise the commit point to go back to is the newest that passes:
commits/<generation>.json newest first, then snapshots/<name>/commit.json newest first. What
going back loses is worked out against the damaged commit as far as it can still be read (its
commit point read without its checksum; with CURRENT damaged, the commit point whose SHA-256
CURRENT records):

* `missing`: documents it held that the recovered commit does not hold;
* `returned`: documents the recovered commit holds that it did not: deleted since, or replaced
  by a version in one of its segments that cannot be read;
* `unreadable`: its segments whose document ids cannot be read, with how many documents it says
  each held (none of them is in the recovered commit, which would not have passed otherwise);
* `unknown`: which commit was live cannot be read at all, so nothing can be said of it.

Publishing the plan is the writer's (`IndexWriter.recover`, under the store's write lock, which
also makes snapshots live again). Out of scope: repairing damaged files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.errors import (
    DamagedIndexError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    NoIntactCommitError,
)
from index.search.reader import IndexReader
from index.storage.commits import CommitPoint
from index.storage.files import read_json, sha256_of
from index.storage.segments import read_ids
from index.storage.store import IndexStore


@dataclass(frozen=True)
class Loss:
    """What going back to an earlier commit point gives up (see the module docstring)."""

    missing: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, int]] = field(default_factory=list)  # (segment, documents)
    unknown: bool = False

    @property
    def nothing(self) -> bool:
        return not (self.missing or self.returned or self.unreadable or self.unknown)


@dataclass(frozen=True)
class RecoveryPlan:
    damage: str | None  # what is wrong with the live commit; None: it is intact, nothing to do
    source: Path  # the commit point to make live (the live one, when intact)
    commit: CommitPoint
    snapshot: str | None  # the snapshot `source` is the commit point of, if it is one
    loss: Loss


@dataclass(frozen=True)
class Recovery:
    plan: RecoveryPlan
    reader: IndexReader  # on the live commit afterwards


@dataclass(frozen=True)
class _Live:
    path: Path | None  # the live commit point's file, when CURRENT can be read
    commit: CommitPoint | None  # as far as it can be read
    damage: str | None
    files_damaged: bool  # the commit point passes its checksum, but a file it names does not


def plan_recovery(store: IndexStore) -> RecoveryPlan:
    """The live commit if it is intact, else the newest intact commit point and what going
    back to it loses; NoIntactCommitError when no commit point on disk passes every check."""
    live = _check_live(store)
    if live.damage is None and live.path is not None and live.commit is not None:
        return RecoveryPlan(None, live.path, live.commit, None, Loss())
    for path, snapshot in _candidates(store):
        if live.files_damaged and path == live.path:
            continue  # checked already
        files = IndexStore(path.parent) if snapshot else store  # a snapshot is laid out as an index
        try:
            commit = store.read_commit(path.name, directory=path.parent)
            files.verify(commit, path)
        except (IndexCorruptError, IndexMismatchError):
            continue
        return RecoveryPlan(live.damage, path, commit, snapshot, _loss(store, live.commit, files, commit))
    raise NoIntactCommitError(
        store.root, f"{live.damage}; no commit point under commits/ or snapshots/ passes every check"
    )


def _check_live(store: IndexStore) -> _Live:
    try:
        pointer = store.current_pointer()
    except DamagedIndexError as error:
        return _Live(None, None, error.problem, False)
    if pointer is None:
        raise IndexNotFoundError(f"no index in {store.root}: run `rag build` first")
    path = store.commits_dir / pointer.name
    try:
        commit = store.read_commit(pointer.name, pointer.sha256)
    except IndexCorruptError as error:
        return _Live(path, _best_reading(store, path, pointer.sha256), str(error), False)
    try:
        store.verify(commit, path)
    except IndexCorruptError as error:
        return _Live(path, commit, str(error), True)
    return _Live(path, commit, None, False)


def _best_reading(store: IndexStore, named: Path, sha256: str | None) -> CommitPoint | None:
    """The damaged live commit point as far as it can be read: the file whose SHA-256 CURRENT
    records (CURRENT may name the wrong one), else the one it names, without its checksum."""
    files = [named]
    if sha256 is not None:
        matching = [path for path in store.commit_files() if sha256_of(path) == sha256]
        files = matching[:1] + files
    for path in files:
        try:
            return CommitPoint.from_dict(read_json(path, f"commit point {path}"), path)
        except IndexCorruptError:
            continue
    return None


def _candidates(store: IndexStore) -> list[tuple[Path, str | None]]:
    """Commit points to go back to, in the order tried: commits/ newest first, then snapshots."""
    commits: list[tuple[Path, str | None]] = [(path, None) for path in reversed(store.commit_files())]
    snapshots = []
    for name in store.snapshot_names():
        try:
            snapshots.append((store.snapshot_commit(name).generation, name))
        except (IndexCorruptError, IndexMismatchError, FileNotFoundError):
            continue
    ordered = sorted(snapshots, reverse=True)
    return commits + [(store.snapshots_dir / name / "commit.json", name) for _, name in ordered]


def _loss(store: IndexStore, damaged: CommitPoint | None, files: IndexStore, recovered: CommitPoint) -> Loss:
    """What going from `damaged` (in `store`) to `recovered` (whose files are in `files`) loses."""
    if damaged is None:
        return Loss(unknown=True)
    held, unreadable = _live_ids(store, damaged)
    kept, _ = _live_ids(files, recovered)
    return Loss(sorted(held - kept), sorted(kept - held), unreadable)


def _live_ids(store: IndexStore, commit: CommitPoint) -> tuple[set[str], list[tuple[str, int]]]:
    """The ids of the commit's live documents in the segments that can be read, and the
    segments that cannot, with the documents the commit says they hold."""
    ids: set[str] = set()
    unreadable = []
    for entry in commit.segments:
        try:
            segment_ids = read_ids(store.segments_dir / entry.name)
            deleted = set(store.deleted_rows(entry).tolist())
        except IndexCorruptError:
            unreadable.append((entry.name, entry.live_documents))
            continue
        ids.update(document_id for row, document_id in enumerate(segment_ids) if row not in deleted)
    return ids, unreadable
