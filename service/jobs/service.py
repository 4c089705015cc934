"""What the job routes talk to: `Jobs`, and `JobService`, the jobs of this process.

`Jobs` is the routes' view of a server's jobs: store one durably and start it (`create`), read
one or a collection's (`get`, `listing`), ask one to stop (`request_cancel`), all without
blocking the event loop, and `start` / `stop` with the app. `JobService` keeps them in this
process: the store beside the index (service/jobs/store.py) and the worker thread that runs them
(service/jobs/runner.py), as `rag serve` does. The sharded service runs its jobs in one place for
the whole cluster, a deployment of their own, and its ingress reaches them through the same
`Jobs` (service/sharded/jobs.py). Out of scope: HTTP (service/jobs/routes.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from starlette.concurrency import run_in_threadpool

from service.config import Settings
from service.engine import Engine
from service.jobs.inputs import JobInput
from service.jobs.records import JobRecord
from service.jobs.runner import JobRunner
from service.jobs.store import JobStore, jobs_dir


class Jobs(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def create(self, collection: str, job_input: JobInput, batch_size: int) -> JobRecord:
        """A new queued job, on disk whole and started; `ApiError` 503 when too many wait."""
        ...

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def listing(self, collection: str) -> list[JobRecord]:
        """The collection's recent jobs, newest first."""
        ...

    async def request_cancel(self, job_id: str) -> JobRecord | None:
        """`JobStore.request_cancel`: the job's record once cancelled (or asked to stop), None
        if it is unknown; a finished job's unchanged."""
        ...


class JobService:
    """The jobs of this process: their store beside the index and the worker that runs them."""

    def __init__(self, settings: Settings, engine_for: Callable[[str], Engine]) -> None:
        self.store = JobStore(jobs_dir(settings))
        self.runner = JobRunner(self.store, engine_for, settings)

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()

    async def create(self, collection: str, job_input: JobInput, batch_size: int) -> JobRecord:
        record = await run_in_threadpool(self.store.create, collection, job_input, batch_size)
        self.runner.submit(record.id)
        return record

    async def get(self, job_id: str) -> JobRecord | None:
        return self.store.get(job_id)

    async def listing(self, collection: str) -> list[JobRecord]:
        return self.store.listing(collection)

    async def request_cancel(self, job_id: str) -> JobRecord | None:
        return await run_in_threadpool(self.store.request_cancel, job_id)
