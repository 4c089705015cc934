"""The index directory: immutable segments, commit points that list them, and the CURRENT pointer.

Layout of an index directory::

    CURRENT                          the live commit point's file name and its SHA-256
    commits/<generation>.json        a commit point: its segments, each with its deletes file
    segments/<name>/                 immutable segments (`index.storage.segments`)
    deletes/<segment>.<generation>.npy   rows of a segment's deleted documents, as of a commit
    sources/<generation>.json        what the last `rag build` read from files (id -> content hash)
    snapshots/<name>/                a kept commit point (commit.json), with hard links to every
                                     file it needs, laid out as above
    .write.lock                      serialises writers across processes

Everything but CURRENT is written once under a fresh name, by the rules of `index.storage.files`. A
commit writes its new files, then its commit point, then replaces CURRENT (`_switch_current`,
the one atomic step). A crash at any point leaves CURRENT naming a complete commit point whose
files all exist.

Every read checks: a commit point carries its own checksum and CURRENT the commit point's
SHA-256 (`index.storage.commits`, which also says which earlier forms are read), the commit point records
the SHA-256 of each deletes and sources file, and each segment's meta.json those of its files.
`verify` checks every file of a commit point, and its counts against its segments. An index
that exists but cannot be loaded raises `DamagedIndexError`, never "no index": writers stop on it
rather than start empty over it.

Clean-up after a commit keeps the new commit point and the one before it (a reader in another
process that has just read CURRENT can still open it) and every file they name, and deletes the
rest: staging directories of crashed writers, temporary files and half-made snapshots included.
Snapshots hold hard links, so clean-up never touches what they keep. Out of scope: deciding what
to write (`index.write.writer`, which also publishes restores), reading across segments
(`index.search.reader`), choosing a commit point to go back to (`index.write.restoring`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
from filelock import FileLock

from index.errors import (
    DamagedIndexError,
    DamagedSnapshotError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
)
from index.storage.arrays import load_array, npy_bytes
from index.storage.commits import COMMIT_FILE, CommitPoint, Current, SegmentEntry
from index.storage.files import fsync_directory, read_json, sha256_of, verify_file, write_atomically
from index.storage.segments import Segment, staging_owner

KEPT_COMMITS = 2  # the live commit point and the one before it
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SNAPSHOT_STAGING = ".tmp-"  # snapshots/.tmp-NAME: a snapshot being staged (names never start with ".")


class IndexStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.segments_dir = self.root / "segments"
        self.deletes_dir = self.root / "deletes"
        self.commits_dir = self.root / "commits"
        self.sources_dir = self.root / "sources"
        self.snapshots_dir = self.root / "snapshots"
        self._open_segments: dict[str, Segment] = {}

    @contextmanager
    def write_lock(self, timeout: float = -1) -> Iterator[None]:
        """Held by every writer; with `timeout` >= 0, `filelock.Timeout` after that many seconds."""
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / ".write.lock"), timeout=timeout):
            yield

    # --- reading ---------------------------------------------------------------------------

    def current_pointer(self) -> Current | None:
        """What CURRENT says; None only when there is truly no index here."""
        path = self.root / "CURRENT"
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            if self.commit_files() or self._legacy():
                raise DamagedIndexError(self.root, f"{path} is missing") from None
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise DamagedIndexError(self.root, f"cannot read {path}: {error}") from error
        pointer = Current.parse(text)
        if not text.strip():
            raise DamagedIndexError(self.root, f"{path} is empty")
        if self._legacy() and pointer is not None and not pointer.name.endswith(".json"):
            raise IndexMismatchError(
                f"the index in {self.root} is in an earlier format (one directory per generation): run "
                "`rag build` to convert it (its documents are kept and nothing is embedded again)"
            )
        if pointer is None or not COMMIT_FILE.fullmatch(pointer.name):
            raise DamagedIndexError(
                self.root,
                f"{path} is damaged: it holds {text[:200]!r}, not a commit point's name and checksum",
            )
        return pointer

    def current_stamp(self) -> tuple[int, int, int] | None:
        """(inode, mtime in ns, size) of CURRENT, None when there is none: a stat, not a read.
        A commit replaces CURRENT by a rename, so a changed stamp means CURRENT may name another
        commit; an unchanged one almost surely means it does not (two commits within one clock
        tick could reuse an inode and a time), so callers still read CURRENT now and then."""
        try:
            status = os.stat(self.root / "CURRENT")
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    def current_name(self) -> str | None:
        """The live commit point's file name; None only when there is truly no index here."""
        pointer = self.current_pointer()
        return None if pointer is None else pointer.name

    def current(self) -> CommitPoint | None:
        """The live commit point, or None when there is no index."""
        pointer = self.current_pointer()
        return None if pointer is None else self.read_commit(pointer.name, pointer.sha256)

    def read_commit(self, name: str, sha256: str | None = None, directory: Path | None = None) -> CommitPoint:
        """Commit point `name` (under commits/, or `directory`), its checksum verified; with
        `sha256` (what CURRENT records for it), the whole file's too."""
        path = (directory or self.commits_dir) / name
        commit = CommitPoint.read(path)
        if sha256 is not None and sha256_of(path) != sha256:
            raise IndexCorruptError(
                f"{self.root / 'CURRENT'} is damaged: it records a checksum for {path} that the file "
                "(which passes its own) does not have"
            )
        return commit

    def commit_files(self) -> list[Path]:
        """The commit points under commits/, oldest first."""
        if not self.commits_dir.is_dir():
            return []
        return sorted(p for p in self.commits_dir.iterdir() if COMMIT_FILE.fullmatch(p.name))

    def latest_generation(self) -> int:
        """The highest generation of any commit point under commits/ (0: none)."""
        files = self.commit_files()
        return int(files[-1].stem) if files else 0

    def segment(self, name: str) -> Segment:
        """The named segment, opened (and its checksums verified) once per store."""
        segment = self._open_segments.get(name)
        if segment is None:
            segment = self._open_segments[name] = Segment.open(self.segments_dir / name)
        return segment

    def forget_segments_except(self, names: set[str]) -> None:
        """Drop this store's handles on segments no longer live (readers keep their own)."""
        for name in list(self._open_segments):
            if name not in names:
                del self._open_segments[name]

    def deleted_rows(self, entry: SegmentEntry) -> npt.NDArray[np.int64]:
        if entry.deletes is None or entry.deletes_sha256 is None:
            return np.zeros(0, dtype=np.int64)
        path = self.deletes_dir / entry.deletes
        verify_file(path, entry.deletes_sha256)
        try:
            return np.asarray(load_array(path), dtype=np.int64)
        except (OSError, ValueError) as error:
            raise IndexCorruptError(f"cannot read {path}: {error}") from error

    def sources(self, commit: CommitPoint) -> dict[str, str]:
        """What the last `rag build` read from files: document id -> content hash."""
        if commit.sources is None or commit.sources_sha256 is None:
            return {}
        path = self.sources_dir / commit.sources
        verify_file(path, commit.sources_sha256)
        return read_json(path, f"sources file {path}")

    def verify(self, commit: CommitPoint, commit_point: Path) -> None:
        """Check every file `commit` (read from `commit_point`) names against its checksum, and
        each segment's counts against the commit's: IndexCorruptError naming the first that
        fails. Reads every byte, afresh. (A snapshot's directory is laid out as an index is, so
        `IndexStore(snapshot directory).verify` checks a snapshot.)"""
        for entry in commit.segments:
            segment = Segment.open(self.segments_dir / entry.name)
            entry.check(segment, len(self.deleted_rows(entry)), commit_point)
        if commit.sources is not None and commit.sources_sha256 is not None:
            verify_file(self.sources_dir / commit.sources, commit.sources_sha256)

    # --- writing (call under write_lock) --------------------------------------------------

    def write_deletes(self, segment: str, generation: int, rows: npt.NDArray[np.int64]) -> tuple[str, str]:
        """A deletes file for `segment` as of `generation`; returns its name and checksum."""
        name = f"{segment}.{generation:010d}.npy"
        self.deletes_dir.mkdir(parents=True, exist_ok=True)
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        return name, write_atomically(self.deletes_dir / name, npy_bytes(rows))

    def write_sources(self, generation: int, sources: dict[str, str]) -> tuple[str, str]:
        name = f"{generation:010d}.json"
        self.sources_dir.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(sources, sort_keys=True).encode("utf-8")
        return name, write_atomically(self.sources_dir / name, payload)

    def publish(self, commit: CommitPoint) -> None:
        """Write `commit` and make it the live one, then clean up. Every file it names must be
        written already; when this returns, the commit is durable."""
        self.commits_dir.mkdir(parents=True, exist_ok=True)
        checksum = commit.write(self.commits_dir / commit.file_name)
        self._switch_current(Current(commit.file_name, checksum))
        self.clean_up()

    def _switch_current(self, pointer: Current) -> None:
        """Make the complete commit point `pointer` names the live one: the commit's one atomic step."""
        write_atomically(self.root / "CURRENT", pointer.to_bytes())

    def clean_up(self) -> None:
        """Delete what no kept commit point names (see the module docstring)."""
        names = [path.name for path in self.commit_files()]
        current = self.current_name()
        kept_names = set(names[-KEPT_COMMITS:]) | ({current} if current else set())
        kept, damaged = [], False
        for name in sorted(kept_names):
            try:
                kept.append(self.read_commit(name))
            except (IndexCorruptError, IndexMismatchError):
                damaged = True  # what it names is unknown: no file is deleted this time
        used_segments = {entry.name for commit in kept for entry in commit.segments}
        used_deletes = {entry.deletes for commit in kept for entry in commit.segments if entry.deletes}
        used_sources = {commit.sources for commit in kept if commit.sources}
        directories = [(self.commits_dir, kept_names)]
        if not damaged:
            directories += [
                (self.segments_dir, used_segments),
                (self.deletes_dir, used_deletes),
                (self.sources_dir, used_sources),
            ]
        for directory, used in directories:
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if path.name in used or _staged_by_a_live_process(path):
                    continue
                _remove(path)
        # Atomic writes and snapshots run under the write lock, as this does: a temporary file
        # beside CURRENT or a snapshot's staging directory is what one that failed left behind.
        for path in self.root.glob(".*.tmp"):
            _remove(path)
        if self.snapshots_dir.is_dir():
            for path in self.snapshots_dir.glob(f"{SNAPSHOT_STAGING}*"):
                _remove(path)
        if self._legacy() and current and current.endswith(".json"):
            shutil.rmtree(self.root / "generations", ignore_errors=True)

    # --- snapshots ------------------------------------------------------------------------

    def snapshot(self, name: str) -> CommitPoint:
        """Keep the live commit point as `name`: hard links to its files, so nearly free. A
        snapshot that fails half-way leaves nothing behind."""
        _check_snapshot_name(name)
        target = self.snapshots_dir / name
        if target.exists():
            raise FileExistsError(f"snapshot {name!r} already exists")
        commit = self.current()
        if commit is None:
            raise IndexNotFoundError(f"no index in {self.root}: run `rag build` first")
        staging = self.snapshots_dir / f"{SNAPSHOT_STAGING}{name}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
            for source in self._files_of(commit):
                link = staging / source.relative_to(self.root)
                link.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, link)
            commit.write(staging / "commit.json")
            for directory in sorted({p.parent for p in staging.rglob("*")} | {staging}):
                fsync_directory(directory)
            os.replace(staging, target)
        except BaseException:  # a full disk, say: no half-made snapshot stays behind
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_directory(self.snapshots_dir)
        return commit

    def snapshot_names(self) -> list[str]:
        if not self.snapshots_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.snapshots_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def snapshot_commit(self, name: str) -> CommitPoint:
        """Snapshot `name`'s commit point, its checksum verified (DamagedSnapshotError if not)."""
        _check_snapshot_name(name)
        directory = self.snapshots_dir / name
        if not (directory / "commit.json").is_file():
            raise FileNotFoundError(f"no snapshot named {name!r}")
        try:
            return self.read_commit("commit.json", directory=directory)
        except IndexCorruptError as error:
            raise DamagedSnapshotError(name, error) from error

    def verified_snapshot(self, name: str) -> CommitPoint:
        """Snapshot `name`'s commit point once every file it names passes its checks too; a
        damaged snapshot is DamagedSnapshotError naming the first file that does not."""
        commit = self.snapshot_commit(name)
        directory = self.snapshots_dir / name
        try:
            IndexStore(directory).verify(commit, directory / "commit.json")
        except IndexCorruptError as error:
            raise DamagedSnapshotError(name, error) from error
        return commit

    def link_snapshot(self, name: str) -> None:
        """Hard-link every file of snapshot `name` into the index, where the index lacks it or
        holds another copy (a damaged one, say), so a commit can list the snapshot's segments."""
        snapshot = self.snapshots_dir / name
        touched = set()
        for source in sorted(snapshot.rglob("*")):
            relative = source.relative_to(snapshot)
            if not source.is_file() or relative.parts[0] == "commit.json":
                continue
            destination = self.root / relative
            if destination.exists() and os.path.samefile(source, destination):
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            temporary = destination.with_name(f".{destination.name}.link")
            temporary.unlink(missing_ok=True)
            os.link(source, temporary)
            os.replace(temporary, destination)  # atomic over another copy too
            touched |= {destination.parent, destination.parent.parent}
        for directory in sorted(touched):
            fsync_directory(directory)

    def _files_of(self, commit: CommitPoint) -> list[Path]:
        files = [p for entry in commit.segments for p in (self.segments_dir / entry.name).iterdir()]
        files += [self.deletes_dir / entry.deletes for entry in commit.segments if entry.deletes]
        if commit.sources:
            files.append(self.sources_dir / commit.sources)
        return files

    def _legacy(self) -> bool:
        return (self.root / "generations").is_dir()


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _staged_by_a_live_process(path: Path) -> bool:
    owner = staging_owner(path)
    if not owner:
        return False
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_snapshot_name(name: str) -> None:
    if not SNAPSHOT_NAME.fullmatch(name):
        raise ValueError(
            f"invalid snapshot name {name!r}: use 1-64 letters, digits, '_', '-', '.', starting with a letter or digit"
        )
