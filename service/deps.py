"""Typed dependencies shared by the routes, and the routes' adapters to `service.queries`.

Dependencies that only read the app's state are `async def`: FastAPI runs a plain `def`
dependency on a worker thread, a thread hop per dependency per request for no I/O at all."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service import queries
from service.config import Settings
from service.engine import Engine


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def checked_query(query: str, settings: Settings) -> str:
    """The query under this server's limits; `InvalidQueryError` (a 422) names the one it breaks."""
    return queries.checked_query(query, settings.max_query_chars)


def checked_k(k: int, settings: Settings) -> int:
    return queries.checked_k(k, settings.max_k)
