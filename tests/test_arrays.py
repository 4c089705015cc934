"""Index arrays read from several threads at once (a write, a merge and queries share a process)."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.storage.arrays import load_array, mapped_array


class Finalised:
    """Cyclic garbage whose finaliser runs Python code: a collection inside another thread's
    parsing lets the GIL change hands there, which is what exposes a shared parser state."""

    partner: Finalised | None = None

    def __del__(self) -> None:
        total = 0
        for number in range(50):
            total += number


@pytest.mark.parametrize("read", [mapped_array, load_array])
def test_arrays_read_back_from_concurrent_threads_at_any_stack_depth(
    tmp_path: Path, read: Callable[[Path], Any]
) -> None:
    path = tmp_path / "rows.npy"
    np.save(path, np.arange(12, dtype=np.int64).reshape(3, 4))
    failures: list[BaseException] = []

    def at_depth(depth: int) -> Any:
        return at_depth(depth - 1) if depth else read(path)

    def reader(depth: int) -> None:
        for _ in range(2000):
            first, second = Finalised(), Finalised()
            first.partner, second.partner = second, first
            del first, second
            try:
                assert at_depth(depth).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
            except (SystemError, AssertionError) as error:
                failures.append(error)

    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(1, 1, 1)
    try:
        threads = [threading.Thread(target=reader, args=(depth,)) for depth in (0, 5, 10, 20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
    assert failures == []
