"""What a shard deployment reports of its live commit (`/healthz`, and the versions a write's
response names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShardHealth:
    """One shard's live commit, as a shard deployment reports it."""

    shard: int
    version: str  # EMPTY_VERSION for a shard nothing was written to
    documents: int
    chunks: int
    segments: int
    segment_ceiling: int
    model_name: str | None  # None when the commit holds no segment
    dimension: int
