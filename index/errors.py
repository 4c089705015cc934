"""Named errors of the index layer; the service turns each into a clear HTTP or CLI message."""


class IndexError_(Exception):
    """Base class (named with a trailing underscore so it never shadows the builtin)."""


class IndexNotFoundError(IndexError_):
    """No index has been built in the configured directory yet."""


class IndexMismatchError(IndexError_):
    """The saved index was built with another model or settings than the ones configured."""


class IndexCorruptError(IndexError_):
    """A file of the saved index is missing or does not match its recorded checksum."""


_START_AGAIN = (
    "restore the directory from a backup, or move it aside and run `rag build` to index the corpus "
    "files again (documents added over HTTP or with `rag add` are then only in the copy moved aside)."
)


class DamagedIndexError(IndexCorruptError):
    """An index exists in a directory but cannot be loaded; the message says what to do. Writers
    stop on it rather than start a new, empty index over the documents it holds."""

    advice = (
        "Run `rag restore --last-good` to go back to the newest intact commit point (it lists the "
        f"documents that loses), or {_START_AGAIN}"
    )

    def __init__(self, root: object, problem: object) -> None:
        super().__init__(
            f"{problem}. The index in {root} exists but cannot be loaded; no writer will replace it. "
            + self.advice
        )
        self.problem = str(problem)  # what is damaged, without the advice


class EmbeddingModelError(IndexError_):
    """The embedding model could not be loaded."""


class StorageFullError(IndexError_):
    """A write failed because the disk (or the quota) holding the index is full. A commit becomes
    live in one atomic rename, the last step of a write, so a write that failed changed nothing."""

    def __init__(self, where: str, reason: str, retry: str) -> None:
        super().__init__(
            f"the disk holding {where} is full ({reason}); nothing was changed: free some space and {retry}"
        )


class DamagedSnapshotError(IndexCorruptError):
    """A snapshot's files do not pass their checks; restoring it is refused and nothing changes."""

    def __init__(self, name: str, problem: object) -> None:
        super().__init__(
            f"snapshot {name!r} is damaged, so it cannot be restored; the index is unchanged ({problem})"
        )


class NoIntactCommitError(DamagedIndexError):
    """The live commit is damaged and no commit point on disk passes every check to go back to."""

    advice = f"There is no commit point to go back to: {_START_AGAIN}"


class ShardCountMismatchError(IndexMismatchError):
    """A sharded index was opened with another shard count than the one it was built with; raised
    before anything is read or written."""

    def __init__(self, root: object, recorded: int, asked: int) -> None:
        super().__init__(
            f"the sharded index in {root} has {recorded} shards but {asked} were asked for: documents "
            f"are placed by a hash of their id modulo the shard count, so open it with {recorded} "
            "shards, or build a new sharded index elsewhere"
        )
        self.recorded = recorded
        self.asked = asked


class ShardLayoutError(IndexMismatchError):
    """A folder that is not a sharded index this code can read (another hash rule, a newer
    format, shard folders without a manifest)."""
