"""A full disk: shared by the HTTP handlers and the CLI.

The index layer lets an `OSError` of a write go up as it is; this is the one place that tells a
full disk (or quota) from other failures (`full_disk_reason`), so the server answers 507 and the
CLI prints one line. Nothing a failed write staged is ever live (a commit is one atomic rename,
its last step).
"""

from __future__ import annotations

import errno
import os

FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def full_disk_reason(error: BaseException) -> str | None:
    """What the system said (`No space left on device`) if `error` is a full disk or quota."""
    if isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS:
        return error.strerror or os.strerror(error.errno)
    return None
