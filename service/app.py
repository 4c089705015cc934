"""The FastAPI application: the index is loaded once, at start-up, and shared by every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.config import Settings, get_settings
from service.engine import Engine
from service.errors import install_error_handlers
from service.routes import documents, health, search

API_DESCRIPTION = (
    "Retrieval over a corpus of news articles: ask a question, get the passages that best answer "
    "it, each with an exact citation (document, title, publication, character offsets of the "
    "passage and of the answer sentence) and an `answerable` flag."
)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is None:
            app.state.engine = Engine.from_settings(settings)
        _ = app.state.engine.retriever  # load now: fail at start-up, not on the first query
        yield

    app = FastAPI(
        title="RAG retrieval service",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    if engine is not None:
        app.state.engine = engine
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(search.router)
    app.include_router(documents.router)
    return app
