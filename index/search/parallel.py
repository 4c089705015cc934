"""One query's independent searches run side by side: a large index's search on every core.

A search of an index with approximate (IVF) segments makes one FAISS call per such segment and
one BM25 pass, each a few milliseconds of work that does not depend on the others. FAISS's
search releases the GIL and, for a single query, runs on the thread that calls it, so on a
machine with several cores these calls finish sooner side by side than one after another:
`run_all` runs the first call on the calling thread and the others on one process-wide pool
(`SEARCH_THREADS` threads, made on first use), and returns their results in order. Calls made
on the pool's own threads run there one after another, so nothing on the pool waits for the
pool. The calls see the caller's context variables (a request's stage timing,
`index.search.stages`).

Only the read path of indexes large enough to have approximate segments uses it
(`IndexReader.searches_in_parallel`): below that a whole search takes about a millisecond of
Python, and handing parts of it to other threads would cost more than it saves. It shortens a
query while cores are idle and adds no throughput when they are busy, so one query at a time
fans out and the others, meanwhile, run on their own threads. Measured at 1M chunks in 10
segments on two cores: 12.8-15.4 ms a query alone instead of 16.3-18.2 ms, for 15-20 % more CPU
(docs/performance.md). Out of scope: how many queries run at once (the service's worker
threads decide).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")
SEARCH_THREADS = max(1, os.cpu_count() or 1)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_this_thread = threading.local()  # `in_pool` is set on the pool's own threads
_fanning_out = threading.RLock()  # held by the thread whose query's calls are on the pool


def _mark_pool_thread() -> None:
    _this_thread.in_pool = True


def _search_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=SEARCH_THREADS, thread_name_prefix="search", initializer=_mark_pool_thread
            )
        return _pool


def run_all(calls: Sequence[Callable[[], Result]], side_by_side: bool) -> list[Result]:
    """The results of `calls`, in order: with `side_by_side`, the first run on this thread and
    the others meanwhile on the search pool; else one after another on this thread. If a call
    raises, its error is raised here once every call has finished (none is left running on an
    index the caller may then close).

    Side by side only for one query at a time (`_fanning_out`, re-entrant: the query's own
    nested calls fan out too): while another query's calls hold the pool, the cores are busy
    already and this one's run on its own thread, sparing the hand-offs' CPU. On the pool's
    own threads calls always run one after another: a pool thread waiting for the pool could
    wait for ever."""
    if (
        not side_by_side
        or len(calls) <= 1
        or getattr(_this_thread, "in_pool", False)
        or not _fanning_out.acquire(blocking=False)
    ):
        return [call() for call in calls]
    try:
        return _side_by_side(calls)
    finally:
        _fanning_out.release()


def _side_by_side(calls: Sequence[Callable[[], Result]]) -> list[Result]:
    pool = _search_pool()
    # Each call runs in its own copy of the caller's context: a context cannot be entered by
    # two threads at once.
    handed = [pool.submit(contextvars.copy_context().run, call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        for future in handed:
            future.exception()  # waits; the error, if any, is raised below
    return [first, *(future.result() for future in handed)]
