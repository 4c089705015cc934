"""Array helpers the segment files and the query path share.

In scope: reading a stored `.npy` as a memory-mapped plain array (`mapped_array`), and laying
ranges of rows end to end without a Python loop (`ranges`). Out of scope: what the arrays mean
(`index.segments`, `index.postings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def mapped_array(path: Path) -> npt.NDArray[Any]:
    """The array in the .npy file `path`, memory-mapped read-only, as a plain ndarray: indexing an
    `np.memmap` builds a memmap object per call, several microseconds each, which a query pays
    thousands of times across segments. The view keeps the mapping alive."""
    array: npt.NDArray[Any] = np.load(path, mmap_mode="r").view(np.ndarray)
    return array


def ranges(starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The ranges `starts[i]:ends[i]` one after another, e.g. the sentence rows of some chunks
    or the postings of some terms (a Python loop over them costs ~1 ms per 200 ranges, and
    seconds in a merge)."""
    counts = np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - offsets, counts) + np.arange(int(counts.sum()))
