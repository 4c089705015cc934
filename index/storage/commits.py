"""Commit points and CURRENT: what they hold, and their format on disk.

A commit point (`commits/<generation>.json`, and a snapshot's `commit.json`) lists the live
segments, each with its counts and its deletes file (and that file's SHA-256), the model and
settings, and the sources file of the last build (and its SHA-256). It is checksummed JSON
(`index.storage.files`): the checksum of its content is in it, so a flipped byte anywhere in it is
caught. CURRENT holds the live commit point's file name and that file's SHA-256, one line: a
flipped byte in CURRENT is caught too, even one that makes it name another, older commit point.

Compatibility: commit points are of format 3. A commit point of format 2 (the previous release:
no checksum) and a CURRENT holding only a file name (the same release's) are read as they are;
the next commit writes both in the current form. A release that reads only format 2 refuses an
index this one has written to (it takes CURRENT's checksum for part of the file name).

Out of scope: where the files are and when they are written (`index.storage.store`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.errors import IndexCorruptError, IndexMismatchError
from index.settings import IndexSettings
from index.storage.files import read_checksummed_json, write_checksummed_json
from index.storage.segments import Segment

INDEX_FORMAT = 3  # 3: commit points carry their checksum, CURRENT that of the commit point
UNCHECKED_INDEX_FORMAT = 2  # the previous release's commit points, read without a checksum
COMMIT_FILE = re.compile(r"^[0-9]{10}\.json$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


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

    def check(self, segment: Segment, deleted: int, commit_point: Path) -> None:
        """IndexCorruptError naming `commit_point` and the segment unless the counts this entry
        records are the segment's own (`deleted`: the rows of its deletes file). Checked before
        anything builds on them: a wrong count would make a writer drop the segment's documents."""
        recorded = (self.documents, self.chunks, self.deleted)
        actual = (segment.document_count, segment.chunk_count, deleted)
        if recorded != actual:
            raise IndexCorruptError(
                f"commit point {commit_point} is damaged: it lists segment {self.name} with "
                f"{recorded[0]} documents, {recorded[1]} chunks and {recorded[2]} deleted, but the "
                f"segment holds {actual[0]} documents and {actual[1]} chunks and its deletes file "
                f"{actual[2]} rows"
            )


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

    def write(self, path: Path) -> str:
        """Write this commit point to `path` (atomically, durably); returns the file's SHA-256."""
        return write_checksummed_json(path, self.to_dict())

    @classmethod
    def read(cls, path: Path) -> CommitPoint:
        """The commit point in `path`, its checksum verified (IndexCorruptError naming the file)."""
        data = read_checksummed_json(path, f"commit point {path}", unchecked_format=UNCHECKED_INDEX_FORMAT)
        if data.get("format") not in (INDEX_FORMAT, UNCHECKED_INDEX_FORMAT):
            raise IndexMismatchError(
                f"commit point {path} has format {data.get('format')}, not {INDEX_FORMAT}"
            )
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> CommitPoint:
        """The commit point `data` read from `path`; IndexCorruptError naming it if malformed."""
        try:
            commit = cls(
                generation=int(data["generation"]),
                created_at=str(data["created_at"]),
                model_name=str(data["model"]["name"]),
                dimension=int(data["model"]["dimension"]),
                settings=IndexSettings.from_dict(data["settings"]),
                segments=tuple(SegmentEntry(**entry) for entry in data["segments"]),
                sources=data.get("sources"),
                sources_sha256=data.get("sources_sha256"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise IndexCorruptError(f"commit point {path} is damaged ({error!r})") from error
        # Each file the commit point names comes with its checksum.
        if any(e.deletes is not None and e.deletes_sha256 is None for e in commit.segments) or (
            commit.sources is not None and commit.sources_sha256 is None
        ):
            raise IndexCorruptError(f"commit point {path} is damaged (a file without its checksum)")
        return commit

    def successor(self, segments: tuple[SegmentEntry, ...], **changes: Any) -> CommitPoint:
        """The next commit point: one generation on, `segments` live, anything else in `changes`."""
        return replace(self, generation=self.generation + 1, created_at=_now(), segments=segments, **changes)


def first_commit(model_name: str, dimension: int, settings: IndexSettings) -> CommitPoint:
    """The commit point before the first commit of a new index (generation 0, never written)."""
    return CommitPoint(0, _now(), model_name, dimension, settings, ())


@dataclass(frozen=True)
class Current:
    """What CURRENT holds: the live commit point's file name and that file's SHA-256 (None in a
    CURRENT the previous release wrote, which held the name alone)."""

    name: str
    sha256: str | None = None

    @classmethod
    def parse(cls, text: str) -> Current | None:
        """CURRENT's content, or None if it is not a name and a checksum."""
        parts = text.split()
        if len(parts) == 1:
            return cls(parts[0])
        if len(parts) == 2 and SHA256.fullmatch(parts[1]):
            return cls(parts[0], parts[1])
        return None

    def to_bytes(self) -> bytes:
        return (f"{self.name} {self.sha256}" if self.sha256 else self.name).encode("ascii") + b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat()
