"""The app a kill -9 test serves: the real one, but each commit waits between writing its new
generation and switching CURRENT to it, so the test can kill the server inside that window.

Run by `tests.rag_server_process.ServerProcess(..., app=SLOW_SWITCH_APP)`; the pause is read
from SLOW_SWITCH_SECONDS. Lives in tests/: production code has no such pause.
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI

from index.storage.commits import Current
from index.storage.store import IndexStore
from service.app import create_app as create_real_app
from service.config import get_settings
from service.engine import Engine, embedder_for

SLOW_SWITCH_APP = "tests.slow_switch_app:create_app"


class SlowSwitchStore(IndexStore):
    def __init__(self, root: object, pause_seconds: float) -> None:
        super().__init__(str(root))
        self.pause_seconds = pause_seconds

    def _switch_current(self, pointer: Current) -> None:
        time.sleep(self.pause_seconds)
        super()._switch_current(pointer)


def create_app() -> FastAPI:
    settings = get_settings()
    store = SlowSwitchStore(settings.index_dir, float(os.environ["SLOW_SWITCH_SECONDS"]))
    return create_real_app(settings, engine=Engine(settings, embedder_for(settings), store))
