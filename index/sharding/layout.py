"""The folder of a sharded index: a manifest and one ordinary index per shard.

Layout::

    manifest.json    {"format", "shard_count", "hash_rule", "hash_rule_version"}, checksummed
    shard-0/         an ordinary index (`index.storage.store.IndexStore`) holding the documents
    shard-1/         that `index.sharding.assignment.shard_of` gives to shard 1
    ...

The manifest is written once, atomically and durably (`index.storage.files.write_checksummed_json`),
before any shard is written, and never changed. Opening checks it before anything else is read or
written: another shard count is `ShardCountMismatchError`, another hash rule or format, or shard
folders without a manifest, `ShardLayoutError`; a damaged manifest `IndexCorruptError`.
Invariant: every document of `shard-i` has ``shard_of(id, shard_count) == i``. Out of scope:
what is in the shards (`index.sharding.writer`, `index.sharding.shard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from index.errors import IndexCorruptError, IndexNotFoundError, ShardCountMismatchError, ShardLayoutError
from index.sharding.assignment import HASH_RULE, HASH_RULE_VERSION
from index.storage.files import read_checksummed_json, write_checksummed_json
from index.storage.store import IndexStore

MANIFEST = "manifest.json"
FORMAT = 1
SHARD_PREFIX = "shard-"
CREATE_LOCK = ".create.lock"


@dataclass(frozen=True)
class Manifest:
    shard_count: int
    hash_rule: str = HASH_RULE
    hash_rule_version: int = HASH_RULE_VERSION
    format: int = FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "shard_count": self.shard_count,
            "hash_rule": self.hash_rule,
            "hash_rule_version": self.hash_rule_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> Manifest:
        try:
            manifest = cls(
                int(data["shard_count"]),
                str(data["hash_rule"]),
                int(data["hash_rule_version"]),
                int(data["format"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise IndexCorruptError(f"sharded index manifest {path} is damaged ({error!r})") from error
        if manifest.shard_count < 1:
            raise IndexCorruptError(f"sharded index manifest {path} is damaged (no shards)")
        return manifest


@dataclass(frozen=True)
class ShardedLayout:
    root: Path
    manifest: Manifest

    @property
    def shard_count(self) -> int:
        return self.manifest.shard_count

    def store(self, shard: int) -> IndexStore:
        return IndexStore(self.root / f"{SHARD_PREFIX}{shard}")

    def stores(self) -> list[IndexStore]:
        return [self.store(shard) for shard in range(self.shard_count)]

    def has_commit(self) -> bool:
        """Whether any shard holds a commit (a stat of each shard's CURRENT: reads nothing else)."""
        return any(store.current_stamp() is not None for store in self.stores())

    @classmethod
    def open(cls, root: Path | str, shard_count: int | None = None) -> ShardedLayout:
        """The sharded index in `root`; with `shard_count`, checked to have that many shards.
        IndexNotFoundError when there is none."""
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            if _shard_folders(root):
                raise ShardLayoutError(f"{root} holds shard folders but no {MANIFEST}: not a sharded index")
            raise IndexNotFoundError(f"no sharded index in {root}")
        manifest = Manifest.from_dict(read_checksummed_json(path, "sharded index manifest"), path)
        if (manifest.format, manifest.hash_rule, manifest.hash_rule_version) != (
            FORMAT,
            HASH_RULE,
            HASH_RULE_VERSION,
        ):
            raise ShardLayoutError(
                f"the sharded index in {root} is format {manifest.format} with hash rule "
                f"{manifest.hash_rule!r} v{manifest.hash_rule_version}; this code reads format {FORMAT}, "
                f"{HASH_RULE!r} v{HASH_RULE_VERSION}"
            )
        if shard_count is not None and shard_count != manifest.shard_count:
            raise ShardCountMismatchError(root, manifest.shard_count, shard_count)
        return cls(root, manifest)

    @classmethod
    def find(cls, root: Path | str, shard_count: int) -> ShardedLayout | None:
        """`open(root, shard_count)`, or None when `root` holds no index of any kind yet; an
        ordinary index there is `ShardLayoutError`."""
        root = Path(root)
        try:
            return cls.open(root, shard_count)
        except IndexNotFoundError:
            if (root / "CURRENT").exists():
                raise ShardLayoutError(f"{root} holds an ordinary index, not a sharded one") from None
            return None

    @classmethod
    def open_or_create(cls, root: Path | str, shard_count: int) -> ShardedLayout:
        """The sharded index in `root` with `shard_count` shards, its manifest written first when
        there is none yet (a mismatch raises before anything is written)."""
        root = Path(root)
        found = cls.find(root, shard_count)
        if found is not None:
            return found
        if shard_count < 1:
            raise ValueError(f"a sharded index has at least one shard, not {shard_count}")
        root.mkdir(parents=True, exist_ok=True)
        # Two creators at once: the second finds the first's manifest and is checked against it.
        with FileLock(str(root / CREATE_LOCK)):
            try:
                return cls.open(root, shard_count)
            except IndexNotFoundError:
                manifest = Manifest(shard_count)
                write_checksummed_json(root / MANIFEST, manifest.to_dict())
                return cls(root, manifest)


def _shard_folders(root: Path) -> list[Path]:
    return sorted(root.glob(f"{SHARD_PREFIX}*")) if root.is_dir() else []
