"""What the shards last said of themselves, so that most queries ask each shard once, not twice.

A sharded search's first step (`Shard.state`) tells the coordinator each shard's live commit and,
for the query's terms, that shard's part of the BM25 statistics. Those numbers change only when
the shard's commit does. `KnownStates` keeps them per shard, for the commit they were said of:
each shard's version, chunk count, total length, whether it has dated documents, and the
document frequency of every term asked about so far. When every shard's entry holds all of a
query's terms, the coordinator skips the first step and sends `candidates` with `live_only`: a
shard answers only if that version is still its live commit, and otherwise refuses
(`ShardVersionGoneError`), so a query never answers from a commit older than the live one when
it asked. A refusal drops what is known of every shard (their summed statistics were computed
with the stale shard's numbers) and the query takes both steps.

Invariant: an entry's numbers are exactly those `Shard.state` gave for its version; terms of
another version are never mixed in (`remember` replaces an entry whose version changed). The
terms kept per shard are bounded (`MAX_TERMS`; past it the entry starts again from the newest
answer). Safe to use from several threads. Out of scope: asking the shards
(`index.sharding.coordinator`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from index.sharding.messages import ShardState
from index.storage.postings import CollectionStatistics

MAX_TERMS = 100_000  # per shard: ~10 MB of a coordinator's memory at most


@dataclass
class _Known:
    version: str
    chunks: int
    total_length: int
    has_dates: bool
    document_frequency: dict[str, int] = field(default_factory=dict)


class KnownStates:
    def __init__(self, shard_count: int) -> None:
        self._known: list[_Known | None] = [None] * shard_count
        self._lock = threading.Lock()

    def states(self, terms: Sequence[str]) -> list[ShardState] | None:
        """Every shard's `ShardState` for `terms` as last said, or None when a shard is unknown or
        some term was never asked of it at its known version."""
        with self._lock:
            found = []
            for shard, known in enumerate(self._known):
                if known is None or any(term not in known.document_frequency for term in terms):
                    return None
                frequency = {term: known.document_frequency[term] for term in terms}
                statistics = CollectionStatistics(known.chunks, known.total_length, frequency)
                found.append(ShardState(shard, known.version, statistics, known.has_dates))
            return found

    def remember(self, states: Sequence[ShardState]) -> None:
        """Keep what the shards just said (one `ShardState` per shard, in shard order)."""
        with self._lock:
            for state in states:
                known = self._known[state.shard]
                if (
                    known is None
                    or known.version != state.version
                    or len(known.document_frequency) >= MAX_TERMS
                ):
                    statistics = state.statistics
                    known = _Known(state.version, statistics.chunks, statistics.total_length, state.has_dates)
                    self._known[state.shard] = known
                known.document_frequency.update(state.statistics.document_frequency)

    def forget(self) -> None:
        """Drop what is known of every shard."""
        with self._lock:
            self._known = [None] * len(self._known)
