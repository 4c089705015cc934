"""The index's sizes as Prometheus gauges, read from the live engines when `/metrics` is scraped.

Per collection opened in this process (`Collections.opened`; a scrape never opens one): documents,
chunks, segments, the segment ceiling (where writers wait for merges), the live commit's
generation and age, and bytes on disk under the index directory. An engine with no live reader
(no index yet, or the sharded service's ingress, whose shards hold the index) reports nothing.
Out of scope: counting what the shards of a sharded index hold (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.collections import Collections
from service.observability.metrics import NAMESPACE, tree_bytes

GAUGES = {
    "documents": "Live documents of the collection's index.",
    "chunks": "Live chunks (passages) of the collection's index.",
    "segments": "Segments of the live commit.",
    "segment_ceiling": "Segment count at which writers wait for merges.",
    "generation": "Generation of the live commit (index_version's number).",
    "version_age_seconds": "Seconds since the live commit (index_version) was made.",
    "disk_bytes": "Bytes on disk under the collection's index directory.",
}


class IndexGauges(Collector):
    """A collector of `GAUGES` over the collections `collections()` returns (None before the
    app has its engines)."""

    def __init__(self, collections: Callable[[], Collections | None]) -> None:
        self.collections = collections

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        collections = self.collections()
        engines = {} if collections is None else collections.opened()
        now = dt.datetime.now(dt.UTC)
        for name, engine in sorted(engines.items()):
            reader = engine.live_reader()
            if reader is None:
                continue
            commit = reader.commit
            values = {
                "documents": reader.document_count,
                "chunks": reader.chunk_count,
                "segments": len(reader.segments),
                "segment_ceiling": engine.segment_ceiling(reader),
                "generation": commit.generation,
                "version_age_seconds": _age_seconds(commit.created_at, now),
                "disk_bytes": tree_bytes(engine.store.root),
            }
            for family in families:
                family.add_metric([name], values[family.name.removeprefix(f"{NAMESPACE}_index_")])
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(f"{NAMESPACE}_index_{name}", text, labels=["collection"])
            for name, text in GAUGES.items()
        ]


def _age_seconds(created_at: str, now: dt.datetime) -> float:
    try:
        made = dt.datetime.fromisoformat(created_at)
    except ValueError:
        return float("nan")
    if made.tzinfo is None:
        made = made.replace(tzinfo=dt.UTC)
    return max(0.0, (now - made).total_seconds())
