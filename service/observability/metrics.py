"""Every Prometheus metric the service records, defined once, and the small calls that record them.

The metric objects are process-wide and registered in no registry of their own: each app's
registry (`registry_for`) collects them beside its index gauges (service/observability/index_gauges.py)
and the process collector, so two apps in one process (tests) never clash. Labels are bounded:
route templates, methods, status codes, stage names, error codes, write kinds and collection
names (collections exist only by an operator's or admin's writes); never a query, a raw path or
a document id.

Events on the write path (writes, commits, merges, snapshots) are recorded whatever
RAG_METRICS says: they are rare and cost a microsecond. The request path (per-request counts,
latency, stages, batch sizes) is recorded only with RAG_METRICS on (service/observability/requests.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.registry import Collector

NAMESPACE = "rag"
# Latency buckets (seconds): a search takes ~5-50 ms here; a write or a merge up to minutes.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
WRITE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    namespace=NAMESPACE,
    registry=None,
)
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    namespace=NAMESPACE,
    buckets=REQUEST_BUCKETS,
    registry=None,
)
IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "Requests being answered now.",
    namespace=NAMESPACE,
    registry=None,
)
STAGE_SECONDS = Histogram(
    "search_stage_duration_seconds",
    "Time per search stage (encode, dense, bm25, fusion, answers; index/search/stages.py).",
    ["stage"],
    namespace=NAMESPACE,
    buckets=STAGE_BUCKETS,
    registry=None,
)
BATCH_SIZE = Histogram(
    "encoder_batch_size",
    "Questions encoded together in one model call (service/batching.py).",
    namespace=NAMESPACE,
    buckets=BATCH_BUCKETS,
    registry=None,
)
ERRORS = Counter(
    "errors",
    "Error responses by error code (the `error.code` of the JSON body) and status.",
    ["code", "status"],
    namespace=NAMESPACE,
    registry=None,
)
WRITES = Counter(
    "writes",
    "Document writes applied (kind: upsert or delete), by collection.",
    ["collection", "kind"],
    namespace=NAMESPACE,
    registry=None,
)
WRITTEN_DOCUMENTS = Counter(
    "written_documents",
    "Documents added, replaced or removed by writes, by collection and kind.",
    ["collection", "kind"],
    namespace=NAMESPACE,
    registry=None,
)
WRITE_SECONDS = Histogram(
    "write_duration_seconds",
    "Time of one write from its submission until it is durable and live (its group commit's turn included).",
    ["collection"],
    namespace=NAMESPACE,
    buckets=WRITE_BUCKETS,
    registry=None,
)
MERGES = Counter(
    "merges",
    "Segment merges committed, by collection.",
    ["collection"],
    namespace=NAMESPACE,
    registry=None,
)
MERGE_SECONDS = Histogram(
    "merge_duration_seconds",
    "Time of one merge run (one or more merges, committed together), by collection.",
    ["collection"],
    namespace=NAMESPACE,
    buckets=WRITE_BUCKETS,
    registry=None,
)
MERGED_BYTES = Counter(
    "merged_bytes",
    "Bytes on disk of the segments merges wrote, by collection.",
    ["collection"],
    namespace=NAMESPACE,
    registry=None,
)
SNAPSHOTS = Counter(
    "snapshots",
    "Snapshots taken (action=create) and restored (action=restore), by collection.",
    ["collection", "action"],
    namespace=NAMESPACE,
    registry=None,
)

PROCESS_METRICS: tuple[Collector, ...] = (
    REQUESTS,
    REQUEST_SECONDS,
    IN_PROGRESS,
    STAGE_SECONDS,
    BATCH_SIZE,
    ERRORS,
    WRITES,
    WRITTEN_DOCUMENTS,
    WRITE_SECONDS,
    MERGES,
    MERGE_SECONDS,
    MERGED_BYTES,
    SNAPSHOTS,
)


def registry_for(app_collectors: Iterable[Collector]) -> CollectorRegistry:
    """A registry of the process-wide metrics, the process's own (CPU, memory, open files,
    Python's GC) and `app_collectors` (one app's index gauges)."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (*PROCESS_METRICS, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR, *app_collectors):
        registry.register(collector)
    return registry


def error_answered(code: str, status: int) -> None:
    ERRORS.labels(code, str(status)).inc()


def batch_encoded(size: int) -> None:
    BATCH_SIZE.observe(size)


def write_applied(collection: str, kind: str, documents: int, seconds: float) -> None:
    WRITES.labels(collection, kind).inc()
    WRITTEN_DOCUMENTS.labels(collection, kind).inc(documents)
    WRITE_SECONDS.labels(collection).observe(seconds)


def merges_committed(collection: str, merges: int, merged_bytes: int, seconds: float) -> None:
    MERGES.labels(collection).inc(merges)
    MERGED_BYTES.labels(collection).inc(merged_bytes)
    MERGE_SECONDS.labels(collection).observe(seconds)


def snapshot_event(collection: str, action: str) -> None:
    SNAPSHOTS.labels(collection, action).inc()


def tree_bytes(root: Path) -> int:
    """Bytes of the files under `root` (0 if it is gone: a merge's segment may be merged away
    again, an index directory removed, before anyone asks)."""
    total = 0
    pending = [root]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total
