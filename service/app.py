"""The FastAPI application: the default collection's index is loaded once, at start-up, and shared
by every request; named collections (service/collections.py) are opened on first use."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from corpus.dates import warm_date_reader
from service.auth import READ_DEPENDENCIES, ReadKeyGuard
from service.collections import Collections
from service.config import Settings, get_settings
from service.engine import Engine
from service.errors import UnexpectedErrors, install_error_handlers
from service.jobs import routes as jobs
from service.limits import BodySizeLimit
from service.mcp_server import build_mcp_server, streamable_http_route
from service.openapi import install_openapi
from service.routes import admin, collections, documents, health, llm, search, web
from service.schemas import ErrorResponse

API_DESCRIPTION = (
    "Retrieval over a corpus of news articles: ask a question, get the passages that best answer "
    "it, each with an exact citation (document, title, publication, character offsets of the "
    "passage and of the answer sentence) and an `answerable` flag."
)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    mcp = build_mcp_server(lambda name: app.state.collections.get(name), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is None:
            app.state.engine = Engine.from_settings(settings)
            app.state.collections = Collections(app.state.engine, settings)
        app.state.engine.load()  # fail at start-up, not on the first query
        # dateparser's data, loaded in a worker thread before the first document with a date in
        # words needs it; once per process, and frozen with the index below.
        await asyncio.to_thread(warm_date_reader)
        # The model and the index are ~500k long-lived objects: left to the cyclic collector, every
        # full collection scans them all, a pause of ~0.2 s every few dozen queries.
        gc.collect()
        gc.freeze()
        app.state.collections.start_merging()
        app.state.jobs.start()  # resumes the jobs a restart interrupted (service/jobs/runner.py)
        try:
            async with mcp.session_manager.run():  # the `/mcp` route's sessions live with the app
                yield
        finally:
            app.state.jobs.stop()
            app.state.collections.stop_merging()
            gc.unfreeze()

    app = FastAPI(
        title="RAG retrieval service",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    if engine is not None:
        app.state.engine = engine
        app.state.collections = Collections(engine, settings)
    app.state.jobs = jobs.Jobs(settings, lambda name: app.state.collections.for_write(name))
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(search.router, dependencies=READ_DEPENDENCIES)  # keys: service/auth.py
    app.include_router(documents.router)
    app.include_router(admin.router)
    app.include_router(jobs.router)
    app.include_router(llm.router, dependencies=READ_DEPENDENCIES)
    collections.install(app)  # GET /collections and every route above under /collections/{name}
    app.router.routes.append(streamable_http_route(mcp, settings))  # MCP streamable HTTP at /mcp
    web.install(app)
    app.add_middleware(ReadKeyGuard, settings=settings, prefixes=("/mcp",))
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger=(jobs.JOB_PATH_SUFFIX, settings.max_job_bytes, "RAG_MAX_JOB_BYTES"),
    )
    app.add_middleware(UnexpectedErrors)  # inside CORS, so a 500 carries its headers too
    install_openapi(app, ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}"))
    if settings.cors_origins:  # none by default: browsers on other origins get no access
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["Mcp-Session-Id"],
        )
    return app
