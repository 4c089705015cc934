"""Typed dependencies shared by the routes (the request's collection's engine among them), and
the routes' adapters to `service.queries`.

Dependencies that only read the app's state are `async def`: FastAPI runs a plain `def`
dependency on a worker thread, a thread hop per dependency per request for no I/O at all."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service import queries
from service.collection_names import collection_of
from service.collections import Collections
from service.config import Settings
from service.engine import Engine
from service.request_context import note_query


def _collections(request: Request) -> Collections:
    collections: Collections = request.app.state.collections
    return collections


async def get_collections(request: Request) -> Collections:
    return _collections(request)


async def get_engine(request: Request) -> Engine:
    """The engine of the request's collection (`{collection}` in its path, else `default`); a
    404 `collection_not_found` when that collection has no index yet."""
    return _collections(request).get(collection_of(request.path_params))


async def get_engine_for_write(request: Request) -> Engine:
    """As `get_engine`, but a collection that does not exist yet is opened: its first commit
    creates it."""
    return _collections(request).for_write(collection_of(request.path_params))


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
WritableEngineDep = Annotated[Engine, Depends(get_engine_for_write)]
CollectionsDep = Annotated[Collections, Depends(get_collections)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def checked_query(query: str, settings: Settings) -> str:
    """The query under this server's limits; `InvalidQueryError` (a 422) names the one it breaks."""
    note_query(query)  # for the request's log line, which shows it only with RAG_LOG_QUERIES
    return queries.checked_query(query, settings.max_query_chars)


def checked_k(k: int, settings: Settings) -> int:
    return queries.checked_k(k, settings.max_k)
