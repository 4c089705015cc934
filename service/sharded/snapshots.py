"""The sharded service's snapshots and recovery (`/admin/snapshots`, `/admin/recover`; `rag`'s
are the single process's): one snapshot of a sharded index is the snapshot of the same name of
every shard, each kept, listed, checked and restored by its shard's writer
(`service.sharded.writers`).

* `snapshot(name)`: refused before anything is written when any shard has a snapshot of that
  name (`FileExistsError`, 409); then every writer keeps its shard's live commit, all at once. A
  shard nothing was written to yet is first given an empty commit (it answers as before: no
  documents), which its snapshot keeps, so restoring empties that shard again. It is each
  shard's commit when its writer took it: a write acknowledged before the request is in it; one
  acknowledged meanwhile on another shard may be (a write is one shard's commit, never split).
  Its version is the shards' versions joined by ",", as a search's.
* `snapshots()`: a name every shard holds intact is one snapshot (documents summed, the latest
  creation time); a name missing from or damaged on some shard is listed as damaged, naming them.
* `restore(name)`: every writer first checks every file of its shard's snapshot
  (`IndexStore.verified_snapshot`); one missing is `FileNotFoundError` (404), one damaged
  `DamagedSnapshotError` (409), and nothing is changed. Then every writer makes its shard's
  snapshot live as a new commit, all at once. Not atomic across shards: a shard failing in this
  second step (a full disk) leaves the others restored, and the error says which.

* `recover()`: every writer goes back to its shard's newest intact commit point if its live one
  is damaged, all at once, each on its own (`index.write.restoring`); the answer is every
  shard's: what was damaged and lost on each, sources and segments under `shard-<i>/`. A shard
  with nothing intact to go back to is `NoIntactCommitError` (409) naming it; the others are
  recovered all the same (asking again reports them as intact).

Writer calls are not retried (a writer lost under a call may have done it):
`ShardUnavailableError` (503), as for writes. Out of scope: deleting snapshots.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from index.errors import DamagedSnapshotError, NoIntactCommitError
from index.sharding.coordinator import VERSION_SEPARATOR
from index.write.restoring import Loss
from service.engine import CommitSummary, Recovered, Restored
from service.sharded.failures import ReplicaLostError, ShardUnavailableError


class RefusalKind(StrEnum):
    EXISTS = "exists"  # a snapshot of that name is there already
    MISSING = "missing"  # no snapshot of that name
    DAMAGED = "damaged"  # a file of it fails its checks
    NO_INTACT_COMMIT = "no intact commit"  # its live commit is damaged, and nothing to go back to


Answer = TypeVar("Answer")
FanOut = Callable[[Sequence[Callable[[], Any]]], list[Any]]


@dataclass(frozen=True)
class SnapshotRefusal:
    """Why a shard's writer refused a snapshot or recovery call; returned, not raised, since an
    exception would reach the ingress wrapped by Ray (and some do not survive the trip)."""

    shard: int
    kind: RefusalKind
    message: str

    @classmethod
    def of(cls, shard: int, error: FileNotFoundError | DamagedSnapshotError) -> SnapshotRefusal:
        if isinstance(error, FileNotFoundError):
            return cls(shard, RefusalKind.MISSING, str(error))
        return cls(shard, RefusalKind.DAMAGED, str(error.__cause__ or error))

    def error(self, name: str) -> Exception:
        where = f"shard-{self.shard}"
        if self.kind == RefusalKind.EXISTS:
            return FileExistsError(f"snapshot {name!r} already exists on {where}")
        if self.kind == RefusalKind.MISSING:
            return FileNotFoundError(f"no snapshot named {name!r} on {where}")
        if self.kind == RefusalKind.DAMAGED:
            return DamagedSnapshotError(name, f"{where}: {self.message}")
        return NoIntactCommitError(f"{where} of the sharded index", self.message)


class ShardedSnapshots:
    def __init__(
        self, shards: Sequence[Any], writers: Sequence[Any], fan_out: FanOut, write_fan_out: FanOut
    ) -> None:
        """`shards`, `writers`: `RemoteShard`s and `RemoteWriter`s of one collection, in shard
        order; `fan_out` for the shards' reads, `write_fan_out` for the writers."""
        self.shards, self.writers = list(shards), list(writers)
        self.fan_out, self.write_fan_out = fan_out, write_fan_out

    def snapshot(self, name: str) -> CommitSummary:
        holding = [
            f"shard-{shard}"
            for shard, (intact, damaged) in enumerate(self._on_writers(lambda w: w.snapshots))
            if name in {kept for kept, _ in intact} | {broken for broken, _ in damaged}
        ]
        if holding:
            raise FileExistsError(f"snapshot {name!r} already exists (on {', '.join(holding)})")
        made = self._on_writers(lambda writer: functools.partial(writer.snapshot, name))
        return combined(_answered(made, name))

    def snapshots(self) -> tuple[list[tuple[str, CommitSummary]], list[tuple[str, str]]]:
        listed: list[tuple[list[tuple[str, CommitSummary]], list[tuple[str, str]]]] = self._on_writers(
            lambda writer: writer.snapshots
        )
        found: dict[str, list[CommitSummary | str | None]] = {}
        for shard, (intact, damaged) in enumerate(listed):
            for name, kept in intact:
                found.setdefault(name, [None] * len(listed))[shard] = kept
            for name, problem in damaged:
                found.setdefault(name, [None] * len(listed))[shard] = problem
        whole: list[tuple[str, CommitSummary]] = []
        broken: list[tuple[str, str]] = []
        for name, parts in sorted(found.items()):
            kept_parts = [part for part in parts if isinstance(part, CommitSummary)]
            if len(kept_parts) == len(parts):
                whole.append((name, combined(kept_parts)))
                continue
            problems = [
                f"shard-{shard}: {'missing' if part is None else part}"
                for shard, part in enumerate(parts)
                if not isinstance(part, CommitSummary)
            ]
            broken.append((name, "; ".join(problems)))
        return whole, broken

    def restore(self, name: str) -> Restored:
        kept = _answered(
            self._on_writers(lambda writer: functools.partial(writer.verify_snapshot, name)), name
        )
        restored = _answered(self._on_writers(lambda writer: functools.partial(writer.restore, name)), name)
        return Restored(combined(kept), combined([part.live for part in restored]))

    def recover(self) -> Recovered:
        parts = _answered(self._on_writers(lambda writer: writer.recover), "")
        damaged = [f"shard-{shard}: {part.damage}" for shard, part in enumerate(parts) if part.damage]
        return Recovered(
            VERSION_SEPARATOR.join(part.version for part in parts),
            ", ".join(f"shard-{shard}/{part.source}" for shard, part in enumerate(parts) if part.source),
            "; ".join(damaged) or None,
            Loss(
                missing=sorted(i for part in parts for i in part.loss.missing),
                returned=sorted(i for part in parts for i in part.loss.returned),
                unreadable=[
                    (f"shard-{shard}/{segment}", count)
                    for shard, part in enumerate(parts)
                    for segment, count in part.loss.unreadable
                ],
                unknown=any(part.loss.unknown for part in parts),
            ),
        )

    def _on_writers(self, call: Callable[[Any], Callable[[], Any]]) -> list[Any]:
        try:
            return self.write_fan_out([call(writer) for writer in self.writers])
        except ReplicaLostError as lost:
            raise ShardUnavailableError([lost.shard], "its writer was lost during the call") from lost


def _answered(answers: Sequence[Answer | SnapshotRefusal], name: str) -> list[Answer]:
    """The writers' answers, or the first refusal among them raised as its error."""
    for answer in answers:
        if isinstance(answer, SnapshotRefusal):
            raise answer.error(name)
    return [answer for answer in answers if not isinstance(answer, SnapshotRefusal)]


def combined(parts: Sequence[CommitSummary]) -> CommitSummary:
    """The shards' commits, in shard order, as one (see `CommitSummary`)."""
    return CommitSummary(
        VERSION_SEPARATOR.join(part.version for part in parts),
        sum(part.documents for part in parts),
        max(part.created_at for part in parts),
    )
