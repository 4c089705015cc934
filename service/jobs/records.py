"""A bulk ingest job's record: what it is, how far it got, what it refused; and its file format.

In scope: `JobRecord` (the state `GET /jobs/{id}` reports), its states and which are final, and
its serialisation (`record_bytes` / `record_from_bytes`): checksummed JSON (index/storage/files.py
`checksummed_json`, ASCII escapes, so any Unicode in ids and reasons round-trips), format
`RECORD_FORMAT`; a damaged file is `IndexCorruptError`. Out of scope: where records live and
when they are written (service/jobs/store.py), running jobs (service/jobs/runner.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from index.errors import IndexCorruptError
from index.storage.files import CHECKSUM_FIELD, checksum_of, checksummed_json

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
InputKind = Literal["documents", "files"]
JOB_STATES: tuple[str, ...] = get_args(JobState)
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
RECORD_FORMAT = 1
MAX_ERRORS_KEPT = 1000  # per job: `errors_total` counts them all


@dataclass(frozen=True)
class JobError:
    """A document the job refused: its line (1-based: the NDJSON line, the list item, the file),
    its id when it could be read, and why."""

    line: int
    id: str | None
    reason: str


@dataclass
class JobRecord:
    id: str
    collection: str
    kind: InputKind
    total: int
    batch_size: int
    created: float  # seconds since the epoch
    updated: float
    state: JobState = "queued"
    done: int = 0  # input lines processed (committed or refused); only goes up
    errors: list[JobError] = field(default_factory=list)
    errors_total: int = 0
    index_version: str | None = None  # the commit of the job's last batch
    reason: str | None = None  # why the job failed or was cancelled
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def refuse(self, error: JobError) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(error)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_bytes(record: JobRecord) -> bytes:
    """The record file's bytes."""
    return checksummed_json({"format": RECORD_FORMAT, "job": record.to_dict()})


def record_from_bytes(data: bytes, path: Path) -> JobRecord:
    """The record `record_bytes` wrote; IndexCorruptError naming `path` when it is damaged."""
    try:
        payload = json.loads(data.decode("utf-8"))
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        recorded = payload.pop(CHECKSUM_FIELD, None)
        if recorded is None or recorded != checksum_of(payload):
            raise ValueError("checksum mismatch")
        if payload.get("format") != RECORD_FORMAT:
            raise ValueError(f"unknown format {payload.get('format')!r}")
        return _record_of(payload["job"])
    except (ValueError, KeyError, TypeError) as error:  # JSON and Unicode errors are ValueErrors
        raise IndexCorruptError(f"job record {path} is damaged ({error})") from error


def _record_of(job: dict[str, Any]) -> JobRecord:
    if job["state"] not in JOB_STATES or job["kind"] not in get_args(InputKind):
        raise ValueError(f"unknown state {job['state']!r} or kind {job['kind']!r}")
    errors = [JobError(int(e["line"]), e["id"], str(e["reason"])) for e in job["errors"]]
    return JobRecord(
        id=str(job["id"]),
        collection=str(job["collection"]),
        kind=cast(InputKind, job["kind"]),
        total=int(job["total"]),
        batch_size=int(job["batch_size"]),
        created=float(job["created"]),
        updated=float(job["updated"]),
        state=cast(JobState, job["state"]),
        done=int(job["done"]),
        errors=errors,
        errors_total=int(job["errors_total"]),
        index_version=job["index_version"],
        reason=job["reason"],
        cancel_requested=bool(job["cancel_requested"]),
    )
