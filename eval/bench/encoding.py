"""The floor: what the embedding model alone costs, measured in the same run as everything else.

Questions one at a time (what a lone request pays), questions in batches (what concurrent
requests can share) and passages in build-sized batches (what a build cannot go below).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from index.embedding import Embedder


def time_calls(embedder: Embedder, batches: Sequence[Sequence[str]]) -> list[float]:
    """Seconds per `embed_batch` call, one per batch."""
    seconds: list[float] = []
    for batch in batches:
        started = time.perf_counter()
        embedder.embed_batch(batch)
        seconds.append(time.perf_counter() - started)
    return seconds


def question_floor(
    embedder: Embedder, questions: Sequence[str], batch_sizes: Sequence[int]
) -> dict[str, float]:
    """Per-question latency encoded alone, and throughput alone and in batches."""
    embedder.embed_batch(list(questions[:16]))  # warm-up: first calls allocate
    single = time_calls(embedder, [[question] for question in questions])
    figures: dict[str, float] = {
        "questions": len(questions),
        "single_ms_p50": 1000 * statistics.median(single),
        "single_ms_mean": 1000 * statistics.fmean(single),
        "single_per_s": len(single) / sum(single),
    }
    for size in batch_sizes:
        batches = [questions[i : i + size] for i in range(0, len(questions) - size + 1, size)]
        seconds = time_calls(embedder, batches)
        figures[f"batch{size}_per_s"] = sum(len(b) for b in batches) / sum(seconds)
    return figures


def passage_floor(embedder: Embedder, passages: Sequence[str], batch_size: int = 64) -> dict[str, float]:
    """Passages per second through `embed_batch`, longest first like the build (little padding)."""
    ordered = sorted(passages, key=len, reverse=True)
    embedder.embed_batch(ordered[:batch_size])  # warm-up
    seconds = time_calls(embedder, [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)])
    return {
        "passages": len(passages),
        "mean_chars": statistics.fmean(len(p) for p in passages) if passages else 0.0,
        "per_s": len(passages) / sum(seconds) if seconds else 0.0,
    }
