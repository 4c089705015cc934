"""What a shard reports of its live commit (`/healthz`, and the versions a write's response
names): its query replicas (`ShardDeployment.health`) and its writer (`ShardWriter.health`)
alike."""

from __future__ import annotations

from dataclasses import dataclass

from index.search.reader import IndexReader
from index.sharding.shard import EMPTY_VERSION
from index.write.merging import TieredMergePolicy


@dataclass(frozen=True)
class ShardHealth:
    """One shard's live commit."""

    shard: int
    version: str  # EMPTY_VERSION for a shard nothing was written to
    documents: int
    chunks: int
    segments: int
    segment_ceiling: int
    model_name: str | None  # None when the commit holds no segment
    dimension: int

    @classmethod
    def of(cls, shard: int, reader: IndexReader | None, policy: TieredMergePolicy) -> ShardHealth:
        """Shard `shard` at `reader`'s commit; None: a shard nothing was written to."""
        if reader is None:
            return cls(shard, EMPTY_VERSION, 0, 0, 0, 0, None, 0)
        segments = reader.commit.segments
        return cls(
            shard,
            reader.version,
            reader.document_count,
            reader.chunk_count,
            len(reader.segments),
            policy.ceiling(segments),
            reader.model_name if segments else None,
            reader.dimension,
        )
