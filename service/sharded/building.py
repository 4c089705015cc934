"""`rag build --shards N`: a sharded index (`index.sharding`) in RAG_INDEX_DIR, or in
RAG_COLLECTIONS_DIR/<name> for a named collection, for `rag serve --cluster`.

Each shard is built with the documents it owns (a stable hash of their id), one shard after the
other, each shard's commit durable before the next shard is written; the manifest is written
first, and a shard count that does not match an existing sharded index (or an ordinary index in
that directory) is an error before anything is written. The embedder is the caller's: the model
on this machine, or the cluster's actors (`index.cluster.embedding.ClusterEmbedder`).

Out of scope: merging after the build (each shard's writer applies its merge policy as an
ordinary build does).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from corpus import Document
from index.embedding import Embedder
from index.sharding.layout import ShardedLayout
from index.sharding.writer import ShardedWriter
from service.config import Settings


def build_sharded(
    settings: Settings,
    root: Path,
    documents: Sequence[Document],
    shard_count: int,
    embedder: Embedder,
    *,
    exact: bool = False,
    force: bool = False,
) -> str:
    """Sync the sharded index in `root` with `documents`; a line saying what was done."""
    layout = ShardedLayout.open_or_create(root, shard_count)
    writer = ShardedWriter(
        layout,
        embedder,
        settings=settings.index_settings(),
        merge_policy=settings.merge_policy(),
        show_progress=True,
    )
    result = writer.sync(documents, exact=exact, force=force)
    held = {shard: result.results[shard].reader.document_count for shard in sorted(result.results)}
    per_shard = ", ".join(f"shard {shard}: {count}" for shard, count in held.items())
    if not result.changed:
        return (
            f"sharded index in {layout.root} ({shard_count} shards) holds the files' {len(documents)} "
            f"documents as built ({per_shard}); nothing to do"
        )
    return (
        f"built sharded index in {layout.root} ({shard_count} shards; {per_shard}): added "
        f"{len(result.added)}, replaced {len(result.replaced)}, removed {len(result.removed)}"
    )
