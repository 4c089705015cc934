"""The file rules every on-disk format of the index follows, written once.

* Durability: `fsync_file`, `fsync_directory`; `write_atomically` writes a file under a
  temporary name in its directory, fsyncs it, renames it into place and fsyncs the directory, so
  a reader (or a crash) sees the old file or the new one, never part of one. If anything fails (a
  full disk, say) the temporary file is removed and the error propagates.
* Checksums: `sha256_of` a file; `verify_file` against a recorded SHA-256 (IndexCorruptError
  naming the file when it is missing or damaged).
* JSON: `read_json` reads an object the index wrote (IndexCorruptError naming it when missing or
  unreadable). Checksummed JSON (`write_checksummed_json`, `read_checksummed_json`) carries a
  "checksum" field: the SHA-256 of the object's canonical serialisation without that field
  (`canonical_json`: keys sorted, no spaces, ASCII escapes), so a flipped byte anywhere in the
  file is caught, whatever the indentation it was written with.

Every format goes through these: segments (`index.storage.segments`, `index.storage.postings`), commit points,
CURRENT, deletes, sources and snapshots (`index.storage.commits`, `index.storage.store`), the earlier format
read for conversion (`index.write.legacy`), and the evaluation's caches and reports (eval/). Out of
scope: what the files hold and when they are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from index.errors import IndexCorruptError

CHECKSUM_FIELD = "checksum"


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(path: Path) -> None:
    """Make the directory's entries (a file created or renamed in it) durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, data: bytes) -> str:
    """Replace `path` with `data`, durably and atomically; returns the SHA-256 of `data`."""
    # A name of its own, so two writers of the same file never write into one temporary file.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str) -> None:
    """IndexCorruptError naming `path` unless it exists with the SHA-256 `expected_sha256`."""
    try:
        actual = sha256_of(path)
    except FileNotFoundError:
        raise IndexCorruptError(f"index file {path} is missing") from None
    except OSError as error:
        raise IndexCorruptError(f"cannot read index file {path}: {error}") from error
    if actual != expected_sha256:
        raise IndexCorruptError(f"index file {path} is damaged (checksum mismatch)")


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object the index wrote; IndexCorruptError, naming `what`, if missing or damaged."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as error:
        raise IndexCorruptError(f"{what} is missing ({path})") from error
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise IndexCorruptError(f"{what} is damaged ({path}: {error})") from error
    if not isinstance(data, dict):
        raise IndexCorruptError(f"{what} is damaged ({path}: not a JSON object)")
    return data


def canonical_json(obj: dict[str, Any]) -> bytes:
    """The one serialisation a checksum is taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def checksum_of(obj: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def checksummed_json(obj: dict[str, Any]) -> bytes:
    """The file `write_checksummed_json` writes: `obj` and its checksum."""
    if CHECKSUM_FIELD in obj:
        raise ValueError(f"the object to write already has a {CHECKSUM_FIELD!r} field")
    payload = {**obj, CHECKSUM_FIELD: checksum_of(obj)}
    return json.dumps(payload, indent=1, allow_nan=False).encode("ascii")


def write_checksummed_json(path: Path, obj: dict[str, Any]) -> str:
    """Write `obj` with its checksum, atomically (`write_atomically`); returns the file's SHA-256."""
    return write_atomically(path, checksummed_json(obj))


def read_checksummed_json(path: Path, what: str, *, unchecked_format: int | None = None) -> dict[str, Any]:
    """An object `write_checksummed_json` wrote, without its checksum field; IndexCorruptError,
    naming `what` and the file, if it is missing, unreadable, or its checksum does not match.

    An object with no checksum is accepted only when its "format" is `unchecked_format`: the
    format's version written before it carried checksums (a checksum, when there is one, is
    always checked: a flipped byte in the format number is caught too)."""
    data = read_json(path, what)
    recorded = data.pop(CHECKSUM_FIELD, None)
    if recorded is None:
        if unchecked_format is not None and data.get("format") == unchecked_format:
            return data
        raise IndexCorruptError(f"{what} is damaged ({path}: it records no checksum)")
    try:
        actual = checksum_of(data)
    except ValueError:  # NaN or infinity: never written, so damage
        actual = None
    if recorded != actual:
        raise IndexCorruptError(f"{what} is damaged ({path}: checksum mismatch)")
    return data
