"""Group commit: writes that arrive while a commit is being made go into the next one together.

Callers `submit` a change and block until it is committed. One caller at a time, the leader,
takes every change waiting (its own among them, in arrival order, at most `max_group`) and hands
them to `commit` as one group; `commit` returns one outcome per change (a result, or the
exception that change alone raised) or raises, which fails the whole group (nothing of it was
committed). The leader then wakes the others: those whose change was in its group return their
own outcome, and the first still waiting becomes the next leader, so each leader commits one
group and leaves, and nobody drains the queue for everyone else forever.

So N concurrent writers cost about one commit per commit time instead of N: one segment, one
fsync, one switch of CURRENT for a group. Out of scope: what a change is and how a group is
committed (`service.engine` wires `index.write.writer.IndexWriter.apply` in); the cross-process file
lock, which `commit` takes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Change = TypeVar("Change")
Outcome = TypeVar("Outcome")

MAX_GROUP = 256  # changes in one commit: bounds a commit's size and a follower's wait


@dataclass(eq=False)
class _Ticket(Generic[Change, Outcome]):
    change: Change
    done: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Change, Outcome]):
    def __init__(
        self,
        commit: Callable[[Sequence[Change]], Sequence[Outcome | BaseException]],
        *,
        max_group: int = MAX_GROUP,
    ) -> None:
        if max_group < 1:
            raise ValueError(f"max_group must be at least 1, not {max_group}")
        self._commit = commit
        self._max_group = max_group
        self._condition = threading.Condition()
        self._waiting: list[_Ticket[Change, Outcome]] = []
        self._leading = False
        self.groups = 0  # groups committed so far (one commit each), for figures and tests

    def submit(self, change: Change) -> Outcome:
        """Commit `change` (in a group with whatever else is waiting) and return its outcome, or
        raise its error. Returns only once the group's commit is durable."""
        ticket: _Ticket[Change, Outcome] = _Ticket(change)
        with self._condition:
            self._waiting.append(ticket)
            while not ticket.done and self._leading:
                self._condition.wait()
            if not ticket.done:
                self._leading = True
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
        if not ticket.done:
            self._lead(group)
        if ticket.error is not None:
            raise ticket.error
        return ticket.outcome  # type: ignore[return-value]  # set whenever error is None

    def _lead(self, group: list[_Ticket[Change, Outcome]]) -> None:
        try:
            outcomes: Sequence[Outcome | BaseException] = self._commit([t.change for t in group])
            if len(outcomes) != len(group):
                raise RuntimeError(f"commit gave {len(outcomes)} outcomes for {len(group)} changes")
        except BaseException as error:  # noqa: BLE001 - re-raised by every caller of the group
            outcomes = [error] * len(group)
        with self._condition:
            self.groups += 1
            for ticket, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    ticket.error = outcome
                else:
                    ticket.outcome = outcome
                ticket.done = True
            self._leading = False
            self._condition.notify_all()
