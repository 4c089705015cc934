"""What the shards last said of themselves, so that most queries ask each shard once, not twice.

A sharded search's first step (`Shard.state`) tells the coordinator each shard's live commit and,
for the query's terms, that shard's part of the BM25 statistics. Those numbers change only when
the shard's commit does. `KnownStates` keeps them per shard, for the commit they were said of:
each shard's version, chunk count, total length, whether it has dated documents, and the
document frequency of every term asked about so far. For a query, `states` gives each shard's
entry that holds all of its terms; the coordinator asks `state` only of the other shards, and
sends `candidates` to a shard whose state it knew with `live_only`: the shard answers only if
that version is still its live commit, and otherwise refuses (`ShardVersionGoneError`), so a
query never answers from a commit older than the live one when it asked. Each shard is kept
apart: a write to one shard (a new version of it) costs queries only that shard's `state`, and
the other shards' entries stay as they are. And what was known of the shard's previous commit is
asked again with the next `state` call to it (`terms_to_ask`: the `MAX_CARRIED` terms of that
commit used last, carried over), so one call refills its new entry: under steady writes, queries
whose terms were asked before still skip `state`, at the cost of one longer `state` call per
shard and new commit (~3 ms for 1,000 terms on a shard of 18 segments, measured). An entry keeps
its terms in the order they were last used (asked or found), so what is carried over is the
most recently used; a query stream cycling through more distinct terms than that loses them.

Invariant: an entry's numbers are exactly those `Shard.state` gave for its version; terms of
another version are never mixed in (`remember` replaces an entry whose version changed, and
`seen` drops one of a version no longer live). The terms kept per shard are bounded
(`MAX_TERMS`; past it the entry starts again from the newest answer). Safe to use from several
threads. Out of scope: asking the shards (`index.sharding.coordinator`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from index.sharding.messages import ShardState
from index.storage.postings import CollectionStatistics

MAX_TERMS = 100_000  # per shard: ~10 MB of a coordinator's memory at most
MAX_CARRIED = 2_000  # terms of a shard's previous commit asked again at its next one


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
        self._carried: list[tuple[str, ...]] = [()] * shard_count  # terms to ask again, per shard
        self._lock = threading.Lock()

    def states(self, terms: Sequence[str]) -> list[ShardState | None]:
        """Each shard's `ShardState` for `terms` as last said, in shard order; None for a shard
        that is unknown or was never asked some term at its known version."""
        with self._lock:
            found = [_state_of(shard, known, terms) for shard, known in enumerate(self._known)]
            for known, state in zip(self._known, found, strict=True):
                if known is not None and state is not None:
                    _used(known, state.statistics.document_frequency)
            return found

    def terms_to_ask(self, shard: int, terms: Sequence[str]) -> tuple[str, ...]:
        """What to ask `shard`'s state of for a query of `terms`: the terms carried over from its
        previous commit that its entry does not hold yet, then `terms` (used last)."""
        with self._lock:
            asked = set(terms)
            return tuple(dict.fromkeys([*(t for t in self._carried[shard] if t not in asked), *terms]))

    def remember(self, states: Sequence[ShardState]) -> None:
        """Keep what shards just said (a `ShardState` of each, in any order)."""
        with self._lock:
            for state in states:
                known = self._known[state.shard]
                if known is not None and known.version != state.version:
                    self._carried[state.shard] = _last_terms(known)
                if (
                    known is None
                    or known.version != state.version
                    or len(known.document_frequency) >= MAX_TERMS
                ):
                    statistics = state.statistics
                    known = _Known(state.version, statistics.chunks, statistics.total_length, state.has_dates)
                    self._known[state.shard] = known
                _used(known, state.statistics.document_frequency)
                carried = self._carried[state.shard]
                self._carried[state.shard] = tuple(t for t in carried if t not in known.document_frequency)

    def seen(self, versions: Sequence[str]) -> None:
        """The shards' live commits are now `versions` (in shard order, as a write answered them):
        what is known of any other commit is dropped, so the next query asks that shard's state
        instead of being refused by it."""
        with self._lock:
            for shard, version in enumerate(versions):
                known = self._known[shard]
                if known is not None and known.version != version:
                    self._known[shard] = None
                    self._carried[shard] = _last_terms(known)


def _used(known: _Known, frequency: Mapping[str, int]) -> None:
    """Each term of `frequency` with its count, moved to the end of `known`'s (used last)."""
    document_frequency = known.document_frequency
    for term, count in frequency.items():
        document_frequency.pop(term, None)
        document_frequency[term] = count


def _last_terms(known: _Known) -> tuple[str, ...]:
    """The `MAX_CARRIED` terms of an entry's commit used last."""
    return tuple(list(known.document_frequency)[-MAX_CARRIED:])


def _state_of(shard: int, known: _Known | None, terms: Sequence[str]) -> ShardState | None:
    if known is None or any(term not in known.document_frequency for term in terms):
        return None
    frequency = {term: known.document_frequency[term] for term in terms}
    statistics = CollectionStatistics(known.chunks, known.total_length, frequency)
    return ShardState(shard, known.version, statistics, known.has_dates)
