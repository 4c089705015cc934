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


def test_a_shard_is_known_once_it_said_every_term() -> None:
    known = KnownStates(2)
    assert known.states(["gas"]) == [None, None]
    known.remember([state(0, "a1", 4, {"gas": 1})])
    assert known.states(["gas"]) == [state(0, "a1", 4, {"gas": 1}), None]  # shard 1 never said anything
    known.remember([state(1, "b1", 6, {"gas": 0})])
    assert known.states(["gas", "rail"]) == [None, None]  # "rail" was never asked
    assert known.states(["gas", "gas"]) == [
        state(0, "a1", 4, {"gas": 1}),
        state(1, "b1", 6, {"gas": 0}),
    ]


def test_terms_accumulate_within_a_version_and_a_new_version_starts_again() -> None:
    known = KnownStates(2)
    known.remember([state(0, "a1", 4, {"gas": 1}), state(1, "b1", 6, {"gas": 2})])
    known.remember([state(0, "a1", 4, {"rail": 2}), state(1, "b1", 6, {"rail": 0})])
    assert known.states(["gas", "rail"]) == [
        state(0, "a1", 4, {"gas": 1, "rail": 2}),
        state(1, "b1", 6, {"gas": 2, "rail": 0}),
    ]
    known.remember([state(0, "a2", 5, {"rail": 3}, dated=True)])
    assert known.states(["gas"]) == [None, state(1, "b1", 6, {"gas": 2})]  # shard 0 said "gas" of a1 only
    assert known.states(["rail"]) == [
        state(0, "a2", 5, {"rail": 3}, dated=True),
        state(1, "b1", 6, {"rail": 0}),  # shard 1's entry is untouched by shard 0's new version
    ]


def test_seen_drops_only_the_shards_whose_commit_moved_on() -> None:
    known = KnownStates(3)
    known.remember([state(0, "a1", 4, {"gas": 1}), state(1, "b1", 6, {"gas": 2})])
    known.seen(["a1", "b2", "c1"])  # shard 2 was never known: nothing to drop
    assert known.states(["gas"]) == [state(0, "a1", 4, {"gas": 1}), None, None]


def test_the_terms_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    known = KnownStates(2)
    monkeypatch.setattr(known_states, "MAX_TERMS", 2)
    known.remember([state(0, "a1", 4, {"gas": 1, "rail": 1}), state(1, "b1", 6, {"gas": 2, "rail": 0})])
    known.remember([state(0, "a1", 4, {"wheat": 3}), state(1, "b1", 6, {"wheat": 1})])
    assert known.states(["gas"]) == [None, None]  # the full entries started again from the newest answer
    assert known.states(["wheat"]) == [state(0, "a1", 4, {"wheat": 3}), state(1, "b1", 6, {"wheat": 1})]


def test_what_was_known_of_a_shard_s_previous_commit_is_asked_again_at_its_next() -> None:
    known = KnownStates(2)
    known.remember([state(0, "a1", 4, {"gas": 1, "rail": 2}), state(1, "b1", 6, {"gas": 2})])
    assert known.terms_to_ask(0, ["wheat"]) == ("wheat",)  # nothing to carry yet
    known.remember([state(0, "a2", 5, {"wheat": 1})])  # a new commit of shard 0
    assert known.terms_to_ask(0, ["pipe", "gas"]) == ("rail", "pipe", "gas")
    assert known.terms_to_ask(1, ["pipe"]) == ("pipe",)  # shard 1's commit did not change
    known.remember([state(0, "a2", 5, {"pipe": 0, "gas": 1, "rail": 3})])
    assert known.terms_to_ask(0, ["pipe"]) == ("pipe",)  # carried over, once
    assert known.states(["gas", "rail", "wheat"])[0] == state(0, "a2", 5, {"gas": 1, "rail": 3, "wheat": 1})
    known.seen(["a3", "b1"])  # a write said shard 0 is at a3
    assert known.terms_to_ask(0, ["x"]) == ("pipe", "gas", "rail", "wheat", "x")  # used last, last


def test_the_terms_carried_over_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(known_states, "MAX_CARRIED", 2)
    known = KnownStates(1)
    known.remember([state(0, "a1", 4, {"gas": 1, "rail": 2, "wheat": 3})])
    known.remember([state(0, "a2", 5, {"pipe": 0})])
    assert known.terms_to_ask(0, ["pipe"]) == ("rail", "wheat", "pipe")  # the last learnt


def test_the_terms_carried_over_are_those_used_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(known_states, "MAX_CARRIED", 2)
    known = KnownStates(1)
    known.remember([state(0, "a1", 4, {"gas": 1, "rail": 2, "wheat": 3})])
    assert known.states(["gas"]) == [state(0, "a1", 4, {"gas": 1})]  # found: used again
    known.remember([state(0, "a2", 5, {"pipe": 0})])
    assert known.terms_to_ask(0, ["pipe"]) == ("wheat", "gas", "pipe")
