"""What the coordinator keeps of the shards' states (index/sharding/known_states.py)."""

from __future__ import annotations

import pytest

from index.sharding import known_states
from index.sharding.known_states import KnownStates
from index.sharding.messages import ShardState
from index.storage.postings import CollectionStatistics


def state(
    shard: int, version: str, chunks: int, frequency: dict[str, int], dated: bool = False
) -> ShardState:
    return ShardState(shard, version, CollectionStatistics(chunks, chunks * 10, frequency), dated)


def test_nothing_is_known_until_every_shard_said_every_term() -> None:
    known = KnownStates(2)
    assert known.states(["gas"]) is None
    known.remember([state(0, "a1", 4, {"gas": 1})])
    assert known.states(["gas"]) is None  # shard 1 never said anything
    known.remember([state(0, "a1", 4, {"gas": 1}), state(1, "b1", 6, {"gas": 0})])
    assert known.states(["gas", "rail"]) is None  # "rail" was never asked
    assert known.states(["gas", "gas"]) == [
        state(0, "a1", 4, {"gas": 1}),
        state(1, "b1", 6, {"gas": 0}),
    ]


def test_terms_accumulate_within_a_version_and_a_new_version_starts_again() -> None:
    known = KnownStates(1)
    known.remember([state(0, "a1", 4, {"gas": 1})])
    known.remember([state(0, "a1", 4, {"rail": 2})])
    assert known.states(["gas", "rail"]) == [state(0, "a1", 4, {"gas": 1, "rail": 2})]
    known.remember([state(0, "a2", 5, {"rail": 3}, dated=True)])
    assert known.states(["gas"]) is None  # said of a1 only
    assert known.states(["rail"]) == [state(0, "a2", 5, {"rail": 3}, dated=True)]


def test_forget_drops_every_shard_and_the_terms_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    known = KnownStates(2)
    known.remember([state(0, "a1", 4, {"gas": 1}), state(1, "b1", 6, {"gas": 2})])
    known.forget()
    assert known.states(["gas"]) is None
    monkeypatch.setattr(known_states, "MAX_TERMS", 2)
    known.remember([state(0, "a1", 4, {"gas": 1, "rail": 1}), state(1, "b1", 6, {"gas": 2, "rail": 0})])
    known.remember([state(0, "a1", 4, {"wheat": 3}), state(1, "b1", 6, {"wheat": 1})])
    assert known.states(["gas"]) is None  # the full entries started again from the newest answer
    assert known.states(["wheat"]) == [state(0, "a1", 4, {"wheat": 3}), state(1, "b1", 6, {"wheat": 1})]
