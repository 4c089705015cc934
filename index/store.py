"""The index directory: immutable segments, commit points that list them, and the CURRENT pointer.

Layout of an index directory::

    CURRENT                          names the live commit point (replaced by rename)
    commits/<generation>.json        a commit point: its segments, each with its deletes file
    segments/<name>/                 immutable segments (`index.segments`)
    deletes/<segment>.<generation>.npy   rows of a segment's deleted documents, as of a commit
    sources/<generation>.json        what the last `rag build` read from files (id -> content hash)
    snapshots/<name>/                a kept commit point, with hard links to every file it needs
    .write.lock                      serialises writers across processes

Everything but CURRENT is written once under a fresh name: to a temporary name, fsynced, then
renamed into place. A commit writes its new files, then its commit point, then replaces CURRENT
(write, fsync, rename, fsync the directory: `_switch_current`, the one atomic step). A crash at
any point leaves CURRENT naming a complete commit point whose files all exist. Loading checks
every file against the SHA-256 recorded for it. An index that exists but cannot be loaded raises
`DamagedIndexError`, never "no index": writers stop on it rather than start empty over it.

Clean-up after a commit keeps the new commit point and the one before it (a reader in another
process that has just read CURRENT can still open it) and every file they name, and deletes the
rest: staging directories of crashed writers, temporary files and half-made snapshots included.
Snapshots hold hard links, so clean-up never touches what they keep. Out of scope: deciding what
to write (`index.writer`), reading across segments (`index.reader`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from filelock import FileLock

from index.arrays import load_array
from index.errors import DamagedIndexError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.segments import Segment, fsync_directory, read_json, sha256_of, staging_owner
from index.settings import IndexSettings

INDEX_FORMAT = 2
KEPT_COMMITS = 2  # the live commit point and the one before it
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SNAPSHOT_STAGING = ".tmp-"  # snapshots/.tmp-NAME: a snapshot being staged (names never start with ".")


@dataclass(frozen=True)
class SegmentEntry:
    """A segment as one commit point lists it: its deleted documents as of that commit."""

    name: str
    documents: int
    chunks: int
    deletes: str | None = None  # file under deletes/, None when nothing is deleted
    deleted: int = 0
    deletes_sha256: str | None = None

    @property
    def live_documents(self) -> int:
        return self.documents - self.deleted


@dataclass(frozen=True)
class CommitPoint:
    generation: int
    created_at: str
    model_name: str
    dimension: int
    settings: IndexSettings
    segments: tuple[SegmentEntry, ...]
    sources: str | None = None  # file under sources/
    sources_sha256: str | None = None

    @property
    def version(self) -> str:
        """`index_version`: ordered by generation, so it never goes backwards (and sorts after
        the timestamps of the single-generation format)."""
        return f"g{self.generation:010d}-{self.created_at[:19].replace('-', '').replace(':', '')}Z"

    @property
    def file_name(self) -> str:
        return f"{self.generation:010d}.json"

    @property
    def documents(self) -> int:
        return sum(entry.live_documents for entry in self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "generation": self.generation,
            "index_version": self.version,
            "created_at": self.created_at,
            "model": {"name": self.model_name, "dimension": self.dimension},
            "settings": self.settings.to_dict(),
            "segments": [vars(entry) for entry in self.segments],
            "sources": self.sources,
            "sources_sha256": self.sources_sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommitPoint:
        return cls(
            generation=int(data["generation"]),
            created_at=str(data["created_at"]),
            model_name=str(data["model"]["name"]),
            dimension=int(data["model"]["dimension"]),
            settings=IndexSettings.from_dict(data["settings"]),
            segments=tuple(SegmentEntry(**entry) for entry in data["segments"]),
            sources=data.get("sources"),
            sources_sha256=data.get("sources_sha256"),
        )

    def successor(self, segments: tuple[SegmentEntry, ...], **changes: Any) -> CommitPoint:
        """The next commit point: one generation on, `segments` live, anything else in `changes`."""
        return replace(self, generation=self.generation + 1, created_at=_now(), segments=segments, **changes)


def first_commit(model_name: str, dimension: int, settings: IndexSettings) -> CommitPoint:
    """The commit point before the first commit of a new index (generation 0, never written)."""
    return CommitPoint(0, _now(), model_name, dimension, settings, ())


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

    def current_name(self) -> str | None:
        """The live commit point's file name; None only when there is truly no index here."""
        try:
            name = (self.root / "CURRENT").read_text("utf-8").strip()
        except FileNotFoundError:
            if (self.commits_dir.is_dir() and any(self.commits_dir.glob("*.json"))) or self._legacy():
                raise DamagedIndexError(self.root, f"{self.root / 'CURRENT'} is missing") from None
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise DamagedIndexError(self.root, f"cannot read {self.root / 'CURRENT'}: {error}") from error
        if not name:
            raise DamagedIndexError(self.root, f"{self.root / 'CURRENT'} is empty")
        if self._legacy() and not name.endswith(".json"):
            raise IndexMismatchError(
                f"the index in {self.root} is in an earlier format (one directory per generation): run "
                "`rag build` to convert it (its documents are kept and nothing is embedded again)"
            )
        return name

    def current(self) -> CommitPoint | None:
        """The live commit point, or None when there is no index."""
        name = self.current_name()
        return None if name is None else self.read_commit(name)

    def read_commit(self, name: str, directory: Path | None = None) -> CommitPoint:
        path = (directory or self.commits_dir) / name
        data = read_json(path, f"commit point {name}")
        if data.get("format") != INDEX_FORMAT:
            raise IndexMismatchError(
                f"commit point {path} has format {data.get('format')}, not {INDEX_FORMAT}"
            )
        return CommitPoint.from_dict(data)

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
        if entry.deletes is None:
            return np.zeros(0, dtype=np.int64)
        path = self.deletes_dir / entry.deletes
        _verify(path, entry.deletes_sha256)
        try:
            return np.asarray(load_array(path), dtype=np.int64)
        except (OSError, ValueError) as error:
            raise IndexCorruptError(f"cannot read {path}: {error}") from error

    def sources(self, commit: CommitPoint) -> dict[str, str]:
        """What the last `rag build` read from files: document id -> content hash."""
        if commit.sources is None:
            return {}
        path = self.sources_dir / commit.sources
        _verify(path, commit.sources_sha256)
        try:
            sources: dict[str, str] = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as error:
            raise IndexCorruptError(f"cannot read {path}: {error}") from error
        return sources

    # --- writing (call under write_lock) --------------------------------------------------

    def write_deletes(self, segment: str, generation: int, rows: npt.NDArray[np.int64]) -> tuple[str, str]:
        """A deletes file for `segment` as of `generation`; returns its name and checksum."""
        name = f"{segment}.{generation:010d}.npy"
        self.deletes_dir.mkdir(parents=True, exist_ok=True)
        path = self.deletes_dir / name
        _write_atomically(path, lambda handle: np.save(handle, np.sort(np.asarray(rows, dtype=np.int64))))
        return name, sha256_of(path)

    def write_sources(self, generation: int, sources: dict[str, str]) -> tuple[str, str]:
        name = f"{generation:010d}.json"
        self.sources_dir.mkdir(parents=True, exist_ok=True)
        path = self.sources_dir / name
        payload = json.dumps(sources, sort_keys=True).encode("utf-8")
        _write_atomically(path, lambda handle: handle.write(payload))
        return name, sha256_of(path)

    def publish(self, commit: CommitPoint) -> None:
        """Write `commit` and make it the live one, then clean up. Every file it names must be
        written already; when this returns, the commit is durable."""
        self.commits_dir.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(commit.to_dict(), indent=1).encode("utf-8")
        _write_atomically(self.commits_dir / commit.file_name, lambda handle: handle.write(payload))
        self._switch_current(commit.file_name)
        self.clean_up()

    def _switch_current(self, name: str) -> None:
        """Make the complete commit point `name` the live one: the commit's one atomic step."""
        _write_atomically(self.root / "CURRENT", lambda handle: handle.write(name.encode("utf-8")))

    def clean_up(self) -> None:
        """Delete what no kept commit point names (see the module docstring)."""
        names = sorted(p.name for p in self.commits_dir.glob("*.json")) if self.commits_dir.is_dir() else []
        current = self.current_name()
        kept_names = set(names[-KEPT_COMMITS:]) | ({current} if current else set())
        kept = [self.read_commit(name) for name in sorted(kept_names)]
        used_segments = {entry.name for commit in kept for entry in commit.segments}
        used_deletes = {entry.deletes for commit in kept for entry in commit.segments if entry.deletes}
        used_sources = {commit.sources for commit in kept if commit.sources}
        for directory, used in (
            (self.segments_dir, used_segments),
            (self.deletes_dir, used_deletes),
            (self.sources_dir, used_sources),
            (self.commits_dir, kept_names),
        ):
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
        """Keep the live commit point as `name`: hard links to its files, so nearly free."""
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
            for source in self._files_of(commit):
                link = staging / source.relative_to(self.root)
                link.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, link)
            (staging / "commit.json").write_text(json.dumps(commit.to_dict(), indent=1), "utf-8")
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
        _check_snapshot_name(name)
        if not (self.snapshots_dir / name / "commit.json").is_file():
            raise FileNotFoundError(f"no snapshot named {name!r}")
        return self.read_commit("commit.json", self.snapshots_dir / name)

    def restore(self, name: str) -> CommitPoint:
        """Make snapshot `name` live again as a new commit (a later generation, so versions still
        go forwards). Call under write_lock."""
        kept = self.snapshot_commit(name)
        live = self.current()
        for source in (self.snapshots_dir / name).rglob("*"):
            relative = source.relative_to(self.snapshots_dir / name)
            if source.is_file() and relative.parts[0] != "commit.json":
                destination = self.root / relative
                if not destination.exists():
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    os.link(source, destination)
        for directory in (self.segments_dir, self.deletes_dir, self.sources_dir):
            if directory.is_dir():
                fsync_directory(directory)
        generation = max(kept.generation, live.generation if live else 0)
        restored = replace(kept, generation=generation).successor(kept.segments)
        self.publish(restored)
        return restored

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


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _verify(path: Path, expected: str | None) -> None:
    if not path.is_file():
        raise IndexCorruptError(f"index file {path} is missing")
    if expected is not None and sha256_of(path) != expected:
        raise IndexCorruptError(f"index file {path} is damaged (checksum mismatch)")


def _write_atomically(path: Path, write: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)
