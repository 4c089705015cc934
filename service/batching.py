"""Micro-batching of query encodings: concurrent questions share one model call.

Encoding one question costs the model almost as much as encoding eight together, so under load
the server is fastest when it turns concurrency into batching. `MicroBatcher.embed(text)` is
called from many request threads at once; one worker thread takes whatever questions are
waiting (up to `max_batch`), encodes them in one `embed_batch` call and hands each caller its
own row.

A lone request is encoded at once: the worker never waits for company unless `max_wait_seconds`
is set, so batches form only from requests that arrive while the model is busy, which is
exactly when batching pays. The worker thread starts on demand and exits after a second
without work, so idle engines (tests, the CLI) leave no thread behind.

Out of scope: passage encoding during builds (already batched by `index.write.building`) and any
caching of query vectors.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from index.embedding import Vectors

EmbedBatch = Callable[[Sequence[str]], Vectors]
OnBatch = Callable[[int], None]  # told each model call's batch size (the service's metrics)
IDLE_EXIT_SECONDS = 1.0


@dataclass(frozen=True)
class _Request:
    text: str
    result: Future[Vectors]


@dataclass
class BatchStats:
    """How the batches came out: calls made and texts encoded (mean batch size = texts / calls)."""

    calls: int = 0
    texts: int = 0
    largest: int = 0


class MicroBatcher:
    def __init__(
        self,
        embed_batch: EmbedBatch,
        max_batch: int = 32,
        max_wait_seconds: float = 0.0,
        on_batch: OnBatch | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._embed_batch = embed_batch
        self._on_batch = on_batch
        self.max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        self.stats = BatchStats()
        self._pending: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _worker_running against the worker's idle exit
        self._worker_running = False

    @property
    def waiting(self) -> int:
        """Questions queued for the next model call."""
        return self._pending.qsize()

    def embed(self, text: str) -> Vectors:
        """The (1, dimension) vector of `text`, encoded together with whatever else is waiting."""
        return self._submit(text).result()

    async def embed_async(self, text: str) -> Vectors:
        """`embed` for the event loop: the caller awaits its row without holding a thread, so 32
        waiting requests are 32 awaits, not 32 blocked threads contending for the GIL and the
        cores with the model."""
        return await asyncio.wrap_future(self._submit(text))

    def _submit(self, text: str) -> Future[Vectors]:
        request = _Request(text, Future())
        with self._lock:
            self._pending.put(request)
            if not self._worker_running:
                self._worker_running = True
                threading.Thread(target=self._work, name="query-batcher", daemon=True).start()
        return request.result

    def _work(self) -> None:
        while True:
            try:
                first = self._pending.get(timeout=IDLE_EXIT_SECONDS)
            except queue.Empty:
                with self._lock:  # embed() enqueues under this lock, so nothing is stranded
                    if self._pending.empty():
                        self._worker_running = False
                        return
                continue
            self._encode(self._collect(first))

    def _collect(self, first: _Request) -> list[_Request]:
        batch = [first]
        deadline = time.monotonic() + self.max_wait_seconds
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._pending.get(timeout=remaining) if remaining > 0 else self._pending.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _encode(self, batch: list[_Request]) -> None:
        try:
            vectors = self._embed_batch([request.text for request in batch])
        except Exception as error:  # noqa: BLE001 - handed to every caller, who re-raises it
            for request in batch:
                request.result.set_exception(error)
            return
        self.stats.calls += 1
        self.stats.texts += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        if self._on_batch is not None:
            self._on_batch(len(batch))
        for row, request in enumerate(batch):
            request.result.set_result(vectors[row : row + 1])
