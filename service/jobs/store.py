"""Where jobs live: one directory per job beside the index, written durably before a job is accepted.

`jobs_dir(settings)` is the one place the location is derived: `<RAG_INDEX_DIR>.jobs` next to
the index directory (`.rag/index.jobs` by default), holding `<job id>/input.ndjson` (the job's
documents, one per line, service/jobs/inputs.py) and `<job id>/job.json` (its record,
service/jobs/records.py). Both are written with `write_atomically` (temporary file, fsync,
rename, fsync of the directory): the input first, then the record, and only then does the
client get its 202, so an accepted job is always on disk whole. A directory with an input but no
record was never acknowledged, and is removed at start-up.

Kept bounded: a finished job's input is deleted as soon as it finishes, and only the records of
the newest `KEPT_FINISHED` finished jobs are kept (older ones are deleted when a job finishes and
at start-up); at most `MAX_UNFINISHED` jobs may wait or run at once (503 `too_many_jobs`).
Out of scope: running jobs (service/jobs/runner.py).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from index.errors import IndexCorruptError
from index.storage.files import write_atomically
from service.config import Settings
from service.errors import ApiError
from service.jobs.inputs import JobInput
from service.jobs.records import JobRecord, record_bytes, record_from_bytes

logger = logging.getLogger("rag.jobs")

KEPT_FINISHED = 100
MAX_UNFINISHED = 20
RECORD, INPUT = "job.json", "input.ndjson"


def jobs_dir(settings: Settings) -> Path:
    index = settings.index_dir
    return index.with_name(f"{index.name}.jobs")


class JobStore:
    """The records of every known job, in memory and on disk; thread-safe. Reads return copies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._records: dict[str, JobRecord] = {}

    def load(self) -> list[JobRecord]:
        """Read every record on disk (at start-up); returns the unfinished ones, oldest first."""
        if not self.root.is_dir():
            return []
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir():
                continue
            path = entry / RECORD
            if not path.exists():
                shutil.rmtree(entry, ignore_errors=True)  # never acknowledged: its record was not written
                continue
            try:
                record = record_from_bytes(path.read_bytes(), path)
            except (IndexCorruptError, OSError) as error:
                logger.warning("ignoring job %s: %s", entry.name, error)
                continue
            self._records[record.id] = record
        self._prune()
        unfinished = [r for r in self._records.values() if not r.finished]
        return [replace(r) for r in sorted(unfinished, key=lambda r: r.created)]

    def create(self, collection: str, job_input: JobInput, batch_size: int) -> JobRecord:
        """Store a new queued job durably (input, then record); `ApiError` 503 when too many wait."""
        with self._lock:
            if sum(not r.finished for r in self._records.values()) >= MAX_UNFINISHED:
                raise ApiError(
                    503,
                    "too_many_jobs",
                    f"{MAX_UNFINISHED} jobs are already queued or running; retry once one finishes",
                )
            now = time.time()
            record = JobRecord(
                id=f"job-{uuid.uuid4().hex[:16]}",
                collection=collection,
                kind=job_input.kind,
                total=job_input.total,
                batch_size=batch_size,
                created=now,
                updated=now,
            )
            self._records[record.id] = record
        try:
            directory = self.root / record.id
            directory.mkdir(parents=True)
            write_atomically(directory / INPUT, job_input.data)
            write_atomically(directory / RECORD, record_bytes(record))
        except BaseException:
            with self._lock:
                del self._records[record.id]
            shutil.rmtree(self.root / record.id, ignore_errors=True)
            raise
        return replace(record)

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            record = self._records.get(job_id)
            return None if record is None else _copy(record)

    def listing(self, collection: str) -> list[JobRecord]:
        """The collection's jobs, newest first."""
        with self._lock:
            found = [_copy(r) for r in self._records.values() if r.collection == collection]
        return sorted(found, key=lambda r: r.created, reverse=True)

    def input_path(self, job_id: str) -> Path:
        return self.root / job_id / INPUT

    def start(self, job_id: str) -> JobRecord | None:
        """Mark a queued job running and return a copy for the runner; None if it is not queued
        any more (cancelled meanwhile). A job found running at start-up stays running."""
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.finished:
                return None
            record.state = "running"
            return _copy(record)

    def save(self, record: JobRecord) -> None:
        """Write `record` (the runner's copy) durably, then make it the one reported. A cancel
        asked for meanwhile is kept."""
        with self._lock:
            current = self._records.get(record.id)
            record.cancel_requested = record.cancel_requested or bool(current and current.cancel_requested)
        record.updated = time.time()
        write_atomically(self.root / record.id / RECORD, record_bytes(record))
        with self._lock:
            self._records[record.id] = _copy(record)
        if record.finished:
            self.input_path(record.id).unlink(missing_ok=True)
            with self._lock:
                self._prune()

    def request_cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a job: a queued one at once (durably), a running one after its current batch
        (the runner sees `cancel_requested`). Returns its record then, None if it is unknown;
        a finished job is returned unchanged."""
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.finished:
                return None if record is None else _copy(record)
            record.cancel_requested = True
            if record.state == "queued":
                record.state, record.reason = "cancelled", "cancelled before it started"
                record.updated = time.time()
                write_atomically(self.root / record.id / RECORD, record_bytes(record))
                self.input_path(record.id).unlink(missing_ok=True)
            return _copy(record)

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            record = self._records.get(job_id)
            return record is not None and record.cancel_requested

    def _prune(self) -> None:
        """Forget all but the newest `KEPT_FINISHED` finished jobs (called with the lock held)."""
        finished = sorted((r for r in self._records.values() if r.finished), key=lambda r: r.updated)
        for record in finished[: max(0, len(finished) - KEPT_FINISHED)]:
            del self._records[record.id]
            shutil.rmtree(self.root / record.id, ignore_errors=True)


def _copy(record: JobRecord) -> JobRecord:
    return replace(record, errors=list(record.errors))
