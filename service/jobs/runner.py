"""The worker that runs bulk ingest jobs: one job at a time, off the event loop, batch by batch.

In scope: a thread taking queued jobs in order; each job's documents read from its stored input
and committed `batch_size` at a time through the collection engine's `write` (one group-commit
turn, one segment, one commit per batch: service/engine.py; over shards, one commit per shard
the batch touches: service/sharded/documents.py), the refused ones recorded with their line; the
record saved durably after every batch, so `done` only goes up and always counts committed work.
Between batches the job stops when cancelled (what is committed stays, nothing more is applied:
`cancelled`) or when the server shuts down (it stays `running` on disk).

Restarts: a job found `queued` or `running` at start-up is resumed, skipping the documents its
record counts as done. Those of a batch committed just before a crash but not yet counted are
upserted again, which changes nothing (an unchanged document is `unchanged`: same id, same
content; a document without an id gets the same content-derived id again), so an accepted job is
always finished after a restart, never dropped. A job whose input is gone, or whose commit fails
(a full disk, a damaged index), ends `failed` with the reason. Out of scope: HTTP, storage.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from corpus import Document
from index.write.changes import Upsert
from service.config import Settings
from service.engine import Engine
from service.jobs.inputs import REFUSED, document_of, input_lines, refusal
from service.jobs.records import JobError, JobRecord
from service.jobs.store import JobStore
from service.storage import full_disk_reason

logger = logging.getLogger("rag.jobs")


class _Stopping(Exception):
    """The server is shutting down: leave the job running on disk, to be resumed."""


class JobRunner:
    def __init__(self, store: JobStore, engine_for: Callable[[str], Engine], settings: Settings) -> None:
        self.store, self.engine_for, self.settings = store, engine_for, settings
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Resume the jobs left unfinished by the last run, then run jobs as they come."""
        if self._thread is not None:
            return
        for record in self.store.load():
            logger.info("resuming job %s at %d of %d documents", record.id, record.done, record.total)
            self._queue.put(record.id)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="ingest-jobs", daemon=True)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the current batch; an unfinished job is resumed at the next start."""
        if self._thread is not None:
            self._stopping.set()
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            self._run(job_id)

    def _run(self, job_id: str) -> None:
        record = self.store.start(job_id)
        if record is None:  # cancelled while queued
            return
        try:
            self.store.save(record)
            self._work(record, self.engine_for(record.collection))
        except _Stopping:
            return
        except Exception as error:  # noqa: BLE001 - any failure ends the job `failed`, with its reason
            logger.warning("job %s failed: %s", job_id, error)
            reason = full_disk_reason(error)
            record.state = "failed"
            record.reason = f"the disk is full ({reason})" if reason else f"{type(error).__name__}: {error}"
        try:
            self.store.save(record)
        except OSError as error:  # the record stays as last saved: resumed at the next start
            logger.warning("could not save job %s: %s", job_id, error)

    def _work(self, record: JobRecord, engine: Engine) -> None:
        path = self.store.input_path(record.id)
        if not path.exists():
            record.state, record.reason = "failed", "its input is missing from the jobs directory"
            return
        documents: list[Document] = []
        refused: list[JobError] = []
        lines = 0
        for number, line in input_lines(path, skip=record.done):
            try:
                documents.append(document_of(record.kind, line, self.settings))
            except REFUSED as error:
                refused.append(refusal(record.kind, number, line, error))
            lines += 1
            if lines == record.batch_size:
                self._commit(record, engine, documents, refused, lines)
                documents, refused, lines = [], [], 0
                self._between_batches(record)
                if record.finished:
                    return
        self._commit(record, engine, documents, refused, lines)
        if record.index_version is None:
            record.index_version = engine.live_version()
        record.state = "succeeded"

    def _commit(
        self,
        record: JobRecord,
        engine: Engine,
        documents: list[Document],
        refused: list[JobError],
        lines: int,
    ) -> None:
        """One batch: its documents in one commit, then the record saved with the batch counted."""
        if documents:
            record.index_version = engine.write(Upsert(tuple(documents))).version
        for error in refused:
            record.refuse(error)
        record.done += lines
        self.store.save(record)

    def _between_batches(self, record: JobRecord) -> None:
        if self._stopping.is_set():
            raise _Stopping
        if self.store.cancel_requested(record.id):
            record.state = "cancelled"
            record.reason = f"cancelled after {record.done} of {record.total} documents"
