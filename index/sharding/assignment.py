"""Which shard owns a document: a stable hash of its id, never Python's `hash()`.

``shard_of(id, n) = int.from_bytes(sha256(utf8(id))[:8], "big") mod n``

Invariants: the same id and count give the same shard in every process, on every machine and
in every Python version (SHA-256 is fixed; `hash()` of a str is salted per process); every
shard of `0..n-1` is possible; a document keeps its shard as long as the count is unchanged, so
a replacement or a delete goes where the document is. Changing the count moves most documents
(no consistent hashing): a sharded index records its count and rule (`index.sharding.layout`)
and refuses another. Out of scope: moving documents between shards.
"""

from __future__ import annotations

import hashlib

HASH_RULE = "sha256-first8-big-endian-mod"  # recorded in a sharded index's manifest
HASH_RULE_VERSION = 1


def shard_of(document_id: str, shard_count: int) -> int:
    """The shard (0 to `shard_count` - 1) that owns `document_id` (formula in the module docstring)."""
    if shard_count < 1:
        raise ValueError(f"a sharded index has at least one shard, not {shard_count}")
    digest = hashlib.sha256(document_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % shard_count
