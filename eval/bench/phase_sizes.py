"""The size options of `python -m eval.bench --phase NAME`: each option's default for a full run
and for `--quick`. Out of scope: the options' command-line flags (`eval.bench.__main__`) and
what each phase does with them (`eval.bench.phases`)."""

from __future__ import annotations

from typing import Any

# (full, quick) defaults of each phase's size options.
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "writes_sizes": ("5000,50000,200000", "2000,5000"),
    "writes_articles": (30, 10),
    "writes_warmup": (3, 2),
    "writes_rounds": (2, 1),
    "ingest_documents": (50_000, 5_000),
    "ingest_seconds": (600.0, 60.0),
    "ingest_idle_seconds": (60.0, 20.0),
    "ingest_clients": (8, 8),
    "segments_documents": (0, 0),  # 0: all of SciFact
    "segments_queries": (300, 100),
    "footprint_sizes": ("100000,1000000", "10000,100000"),
    "footprint_queries": (100, 50),
    "scifact_docs": (0, 100),  # the build phase's documents; 0: all of SciFact
    "writers_documents": (2_000, 300),
    "large_chunks": (1_000_000, 200_000),
    "large_queries": (100, 50),
    "large_rounds": (2, 1),
    "pq_chunks": (1_000_000, 100_000),
    "pq_queries": (300, 100),
    "writers_clients": (8, 8),
    "filters_chunks": (100_000, 20_000),
    "filters_queries": (100, 30),
    "filters_rounds": (2, 1),
    # Odd, so the median of the rounds' ratios is one round's; 3 rounds outvote one hit by a burst.
    "baseline_rounds": (5, 3),
    "baseline_c1_requests": (60, 16),  # per side and round
    "baseline_c32_requests": (320, 96),
    "cluster_docs": (1_000, 100),  # SciFact documents beside the bundled corpus; 0: all
    "cluster_shards": (3, 3),
    "cluster_rounds": (3, 1),
    "cluster_c1_requests": (100, 20),  # per side and round
    "cluster_c32_requests": (640, 96),
    "cluster_clients": (8, 8),
    "cluster_writers": (1, 1),
    "cluster_idle_seconds": (60.0, 10.0),
    "cluster_ingest_seconds": (120.0, 20.0),
    "cluster_bulk_documents": (100, 10),  # ~3 KB articles in the bulk job, each side
    "observability_rounds": (5, 3),
    "observability_c1_requests": (60, 20),  # per side and round
    "observability_c32_requests": (320, 96),
    "jobs_documents": (50_000, 1_000),
    "jobs_posts": (50_000, 1_000),  # single POSTs timed (at most jobs_documents)
}
