"""Bulk ingest jobs on a cluster: one `JobService` for the whole sharded service, in a deployment of
its own, which every ingress replica reaches through `RemoteJobs`.

* `JobsDeployment` (`jobs`, exactly one replica): the job store in `<RAG_INDEX_DIR>.jobs`, beside
  the sharded index (service/jobs/store.py), and the worker thread that runs the jobs one at a
  time (service/jobs/runner.py), each batch written through a `ShardedEngine` as the document
  routes write: split by owning shard and sent to those shards' writers, one commit per shard
  the batch touches (service/sharded/documents.py). A query that starts after a batch is counted
  in `done` sees it. One replica, so that one runner owns the store: two would each resume the
  same unfinished job. A replica that dies is started again by Serve, and the new one resumes
  the jobs left queued or running, as a restarted `rag serve` does (a batch committed but not
  yet counted is written again, which changes nothing). It serves no query and takes no logical
  CPU (`JOBS_CPUS`): its batches' embedding runs in the writers.
* `RemoteJobs`: the ingress's `Jobs` (service/jobs/service.py) over the deployment's handle, so
  the job routes are the single process's. A call that the deployment does not answer within
  `JOBS_TIMEOUT_SECONDS`, or that finds no replica, is `JobsUnavailableError` (HTTP 503
  `jobs_unavailable`); it is not retried (a submission may have been stored: list the jobs). A
  job whose stored input would not fit one message between deployments (`max_message_bytes`;
  multipart files are stored base64, a third larger than sent) is refused by the ingress with
  413 `job_too_large` before anything is stored. The store's own refusal (503 `too_many_jobs`)
  crosses back as a value, `JobRefusal`, raised again here as the `ApiError` it was: an
  exception with a constructor of its own does not survive Ray's pickling.

Out of scope: the routes (service/jobs/routes.py), the deployment's options (`JOBS` in
service/sharded/deployments.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.collections import Collections
from service.config import Settings
from service.errors import ApiError
from service.jobs.inputs import JobInput
from service.jobs.records import JobRecord
from service.jobs.service import JobService
from service.sharded.engine import ShardedEngine
from service.sharded.failures import FailureKinds, JobsUnavailableError

JOBS_CPUS = 0
# Storing a job writes its whole input (up to RAG_MAX_JOB_BYTES) durably before it is answered.
JOBS_TIMEOUT_SECONDS = 120.0
MESSAGE_OVERHEAD_BYTES = 1 << 20  # the call's other arguments and framing, around the job's input


@dataclass(frozen=True)
class JobRefusal:
    """The job store refused a job (`ApiError`'s fields), returned rather than raised."""

    status: int
    code: str
    message: str


class JobsDeployment:
    async def __init__(  # type: ignore[misc]  # Serve awaits an async constructor
        self, settings: Settings, shards: Sequence[Any], writers: Sequence[Any], encoder: Any
    ) -> None:
        """The jobs of every collection of the sharded service over these deployments' handles;
        the jobs a previous replica left unfinished are resumed at once."""
        engine = await ShardedEngine.connect(settings, shards, writers, encoder)
        self.service = JobService(settings, Collections(engine, settings).for_write)
        self.service.start()

    async def create(self, collection: str, job_input: JobInput, batch_size: int) -> JobRecord | JobRefusal:
        try:
            return await self.service.create(collection, job_input, batch_size)
        except ApiError as refused:
            return JobRefusal(refused.status, refused.code, refused.message)

    async def get(self, job_id: str) -> JobRecord | None:
        return await self.service.get(job_id)

    async def listing(self, collection: str) -> list[JobRecord]:
        return await self.service.listing(collection)

    async def request_cancel(self, job_id: str) -> JobRecord | None:
        return await self.service.request_cancel(job_id)

    def __del__(self) -> None:
        """Serve's shutdown of the replica: the running job stops after its batch, to be resumed."""
        service: JobService | None = getattr(self, "service", None)
        if service is not None:
            service.stop()


class RemoteJobs:
    """`Jobs` over the jobs deployment's handle (`kinds`: which errors mean it did not answer)."""

    def __init__(
        self,
        handle: Any,
        kinds: FailureKinds,
        max_message_bytes: int,
        timeout_s: float = JOBS_TIMEOUT_SECONDS,
    ) -> None:
        self.handle, self.kinds, self.timeout_s = handle, kinds, timeout_s
        self.max_input_bytes = max_message_bytes - MESSAGE_OVERHEAD_BYTES

    def start(self) -> None:
        """Nothing to start here: the jobs deployment runs the jobs (and resumed them)."""

    def stop(self) -> None:
        """Nothing to stop here: the jobs deployment runs the jobs."""

    async def create(self, collection: str, job_input: JobInput, batch_size: int) -> JobRecord:
        if len(job_input.data) > self.max_input_bytes:
            raise ApiError(
                413,
                "job_too_large",
                f"the job's input is {len(job_input.data)} bytes as stored, over the "
                f"{self.max_input_bytes} a call between the cluster's deployments carries; "
                "split it into several jobs",
            )
        answer: JobRecord | JobRefusal = await self._call("create", collection, job_input, batch_size)
        if isinstance(answer, JobRefusal):
            raise ApiError(answer.status, answer.code, answer.message)
        return answer

    async def get(self, job_id: str) -> JobRecord | None:
        found: JobRecord | None = await self._call("get", job_id)
        return found

    async def listing(self, collection: str) -> list[JobRecord]:
        found: list[JobRecord] = await self._call("listing", collection)
        return found

    async def request_cancel(self, job_id: str) -> JobRecord | None:
        found: JobRecord | None = await self._call("request_cancel", job_id)
        return found

    async def _call(self, method: str, *args: Any) -> Any:
        down: tuple[type[BaseException], ...] = (
            TimeoutError,
            *self.kinds.shard_down,
            *self.kinds.replica_lost,
        )
        try:
            return await asyncio.wait_for(getattr(self.handle, method).remote(*args), self.timeout_s)
        except down as error:
            raise JobsUnavailableError(type(error).__name__) from error
