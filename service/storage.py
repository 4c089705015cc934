"""A full disk, and what failed writes leave behind: shared by the HTTP handlers and the CLI.

The index layer lets an `OSError` of a write go up as it is; this is the one place that tells a
full disk (or quota) from other failures (`full_disk_reason`), so the server answers 507 and the CLI
prints one line. Nothing a failed write staged is ever live (a commit is one atomic rename, its
last step), and what it left on disk is removed by the next commit's clean-up or, at the latest,
by `remove_leftovers` when the server starts and before each `rag` command that writes.
"""

from __future__ import annotations

import errno
import logging
import os

from filelock import Timeout

from index.errors import IndexError_
from index.storage.store import IndexStore

logger = logging.getLogger("rag.storage")

FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def full_disk_reason(error: BaseException) -> str | None:
    """What the system said (`No space left on device`) if `error` is a full disk or quota."""
    if isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS:
        return error.strerror or os.strerror(error.errno)
    return None


def remove_leftovers(store: IndexStore) -> None:
    """Run the store's clean-up once, for the leftovers of writers that failed or died (staging
    directories, temporary files, snapshot staging, segments no kept commit names).

    Only when the write lock is free at once: a writer holding it cleans up after its own commit
    anyway, and a server must not wait minutes for a `rag build` to start. An index that cannot
    be loaded is left as it is: the load or the command that follows says what is wrong."""
    try:
        if store.current_name() is None:
            return
        with store.write_lock(timeout=0):
            store.clean_up()
    except (IndexError_, Timeout):
        return
    except OSError as error:  # leftovers take space but harm nothing: never stop a start for them
        logger.warning("could not remove the leftovers of failed writes in %s: %s", store.root, error)
