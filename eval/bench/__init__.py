"""`make bench`: the service's speed measured against its floor, the embedding model itself.

In scope: bare encoding (the floor), index build throughput, HTTP query latency and throughput
under concurrency against a real uvicorn server, start-up time and peak memory, and search cost
as the index grows (exact vs approximate FAISS, BM25), written as JSON, a markdown table and a
PNG plot (`eval/reports/bench.*`). Entry point: `python -m eval.bench` (see `__main__.py`).
With `--phase`, the segmented index's phases instead (`phases.py`): write latency as the index
grows, sustained ingest under query load, query cost of many segments against one, bytes on disk
and in memory per chunk, `rag build` against an earlier commit, and concurrent writers against
one (documents/s, segments against the server's ceiling).

Left out: retrieval quality (`make eval`) and any timed pass/fail: the figures are reported
against the targets, never asserted, because shared machines are noisy.
"""
