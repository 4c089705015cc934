"""Array helpers the segment files and the query path share.

In scope: reading a stored `.npy`, memory-mapped as a plain array (`mapped_array`) or into
memory (`load_array`), safely from several threads at once, an array as the bytes of a `.npy`
file (`npy_bytes`, for `index.storage.files.write_atomically`), and laying ranges of rows end to end
without a Python loop (`ranges`), and the contenders for a top `limit` with ties kept
(`contenders`). Out of scope: what the arrays mean
(`index.storage.segments`, `index.storage.postings`).
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# np.load parses a file's header with ast.literal_eval, and Python 3.11's AST constructor keeps
# its recursion count per interpreter, not per thread: two threads parsing at once (a write opening
# its new segment while a merge opens its own) can fail with "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905). Headers are read one at a time.
_HEADER_LOCK = threading.Lock()


def mapped_array(path: Path) -> npt.NDArray[Any]:
    """The array in the .npy file `path`, memory-mapped read-only, as a plain ndarray: indexing an
    `np.memmap` builds a memmap object per call, several microseconds each, which a query pays
    thousands of times across segments. The view keeps the mapping alive."""
    with _HEADER_LOCK:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r").view(np.ndarray)
    return array


def npy_bytes(array: npt.NDArray[Any]) -> bytes:
    """`array` as the content of a .npy file."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def load_array(path: Path) -> npt.NDArray[Any]:
    """The array in the .npy file `path`, read into memory."""
    with _HEADER_LOCK:
        array: npt.NDArray[Any] = np.load(path)
    return array


def ranges(starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The ranges `starts[i]:ends[i]` one after another, e.g. the sentence rows of some chunks
    or the postings of some terms (a Python loop over them costs ~1 ms per 200 ranges, and
    seconds in a merge)."""
    counts = np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - offsets, counts) + np.arange(int(counts.sum()))


def contenders(scores: npt.NDArray[np.floating[Any]], limit: int) -> npt.NDArray[np.int64]:
    """Positions of the `limit` highest of `scores` and of every score tied with the lowest of
    them, in no order: only these can make the top `limit` once ties are broken by row."""
    if len(scores) <= limit:
        return np.arange(len(scores))
    if limit <= 0:
        return np.zeros(0, dtype=np.int64)
    threshold = np.partition(scores, len(scores) - limit)[len(scores) - limit]
    return np.flatnonzero(scores >= threshold)
