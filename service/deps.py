"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.engine import Engine
from service.errors import ApiError


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def checked_query(query: str, settings: Settings) -> str:
    """The query, or a 422 naming the limit it breaks. Bad input changes nothing."""
    if not query.strip():
        raise ApiError(422, "invalid_query", "query must not be empty or whitespace")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError as error:
        # A JSON "\ud800" escape parses to a lone surrogate: searchable (the analyser drops it), but
        # the response, which echoes the query, could not be encoded.
        raise ApiError(
            422, "invalid_query", f"query is not valid Unicode: lone surrogate at character {error.start}"
        ) from None
    if len(query) > settings.max_query_chars:
        raise ApiError(
            422,
            "query_too_long",
            f"query is {len(query)} characters; the limit is {settings.max_query_chars} (RAG_MAX_QUERY_CHARS)",
        )
    return query.strip()


def checked_k(k: int, settings: Settings) -> int:
    if not 1 <= k <= settings.max_k:
        raise ApiError(
            422, "k_out_of_range", f"k must be between 1 and {settings.max_k} (RAG_MAX_K); got {k}"
        )
    return k
