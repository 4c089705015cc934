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
from service.jobs.service import Jobs, JobService
from service.limits import BodySizeLimit
from service.mcp_server import build_mcp_server, streamable_http_route
from service.observability.install import install_observability
from service.openapi import install_openapi
from service.ratelimit import RateLimit
from service.readiness import LoadState, Readiness, ReadinessGate, load_in_background
from service.request_log import RequestLog
from service.routes import admin, collections, documents, health, llm, search, web
from service.schemas import ErrorResponse

API_DESCRIPTION = (
    "Retrieval over a corpus of news articles: ask a question, get the passages that best answer "
    "it, each with an exact citation (document, title, publication, character offsets of the "
    "passage and of the answer sentence) and an `answerable` flag."
)


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, job_service: Jobs | None = None
) -> FastAPI:
    """The app over `engine` (by default the one `settings` describe, loaded in the background
    while the server already answers `/readyz`); its jobs are `job_service` (by default this
    process's own, beside the index)."""
    settings = settings or get_settings()
    mcp = build_mcp_server(lambda name: app.state.collections.get(name), settings)

    readiness = Readiness() if engine is None else Readiness(LoadState.READY)
    loaded: list[Engine] = []

    def load() -> None:  # on a worker thread: the server already listens (service/readiness.py)
        built = Engine.from_settings(settings)
        built.load()  # the index, and the model when the index has vectors to check it against
        _ = built.embedder.dimension  # the model, even over an empty index
        built.question_encoder.embed_batch(["warm-up"])  # its ONNX copy now, not at the first question
        loaded.append(built)
        warm_date_reader()

    def serve_loaded() -> None:
        app.state.engine = loaded[0]
        app.state.collections = Collections(loaded[0], settings)
        freeze_and_merge()

    def freeze_and_merge() -> None:
        # The model and the index are ~500k long-lived objects: left to the cyclic collector, every
        # full collection scans them all, a pause of ~0.2 s every few dozen queries.
        gc.collect()
        gc.freeze()
        app.state.collections.start_merging()
        app.state.jobs.start()  # resumes the jobs a restart interrupted (service/jobs/runner.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading: asyncio.Task[None] | None = None
        if engine is None:
            loading = asyncio.create_task(load_in_background(readiness, load, serve_loaded))
        else:
            app.state.engine.load()  # fail at start-up, not on the first query
            # dateparser's data, loaded in a worker thread before the first document with a date in
            # words needs it; once per process, and frozen with the index below.
            await asyncio.to_thread(warm_date_reader)
            freeze_and_merge()
        try:
            async with mcp.session_manager.run():  # the `/mcp` route's sessions live with the app
                yield
        finally:
            app.state.jobs.stop()
            if loading is not None and not loading.done():
                loading.cancel()
            if readiness.ready:
                app.state.collections.stop_merging()
            gc.unfreeze()

    app = FastAPI(
        title="RAG retrieval service",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.readiness = readiness
    if engine is not None:
        app.state.engine = engine
        app.state.collections = Collections(engine, settings)
    app.state.jobs = job_service or JobService(settings, lambda name: app.state.collections.for_write(name))
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(health.probes)  # `/readyz`: the server's, not a collection's
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
    app.add_middleware(RateLimit, settings=settings)  # off unless RAG_RATE_LIMIT_* (service/ratelimit.py)
    app.add_middleware(ReadinessGate, readiness=readiness)
    app.add_middleware(UnexpectedErrors)  # inside CORS, so a 500 carries its headers too
    install_observability(app, settings)  # /metrics, traces; counts the answers of all the above
    install_openapi(app, ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}"))
    if settings.cors_origins:  # none by default: browsers on other origins get no access
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["Mcp-Session-Id"],
        )
    app.add_middleware(RequestLog, settings=settings)  # outermost: every response has its X-Request-ID
    return app
