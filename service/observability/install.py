"""Metrics and traces wired into the app: `GET /metrics`, its key, the request middleware, tracing.

`GET /metrics` answers in Prometheus' text exposition format (prometheus-client's
`generate_latest` of the app's registry: service/observability/metrics.py). With RAG_METRICS_KEY
set it needs that key (as a read key is sent: `Authorization: Bearer <key>` or `X-API-Key`), and
only that one; else, with keys configured, any read key will do (service/auth.py), as for
search. With RAG_METRICS=false the route is not there (404) and nothing is recorded per request.
It is left out of the OpenAPI document: it is for scrapers, not API clients.

Out of scope: pushing metrics (Pushgateway), the sharded service's shard replicas (only the
ingress, this app, is measured: docs/operations.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from service.auth import check_read, key_from_headers
from service.collections import Collections
from service.config import Settings
from service.errors import ApiError
from service.observability import tracing
from service.observability.index_gauges import IndexGauges
from service.observability.metrics import registry_for
from service.observability.requests import RequestMetrics, StageRecorder

METRICS_PATH = "/metrics"


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Add `/metrics` (with RAG_METRICS), the request middleware (with metrics or traces) and the
    FastAPI instrumentation (with traces). Call after the other middleware is added: this one
    then sees their answers (a 401, a 413, a 500) too."""
    provider = tracing.tracer_provider()
    tracer = None if provider is None else tracing.instrument(app, provider)
    if settings.metrics:
        registry = registry_for([IndexGauges(lambda: _collections(app))])
        app.add_api_route(METRICS_PATH, _metrics_endpoint(registry), methods=["GET"], include_in_schema=False)
    if settings.metrics or tracer is not None:
        stages = StageRecorder(settings.metrics, tracer)
        app.add_middleware(RequestMetrics, record=settings.metrics, stages=stages, tracing=tracer is not None)


def _collections(app: FastAPI) -> Collections | None:
    collections: Collections | None = getattr(app.state, "collections", None)
    return collections


def _metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Response]:
    # A plain `def`: collecting reads the index directories' sizes, off the event loop.
    def metrics(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        check_metrics_key(settings, key_from_headers(request.headers))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def check_metrics_key(settings: Settings, key: str | None) -> None:
    """RAG_METRICS_KEY when set (401 without it), else the read rule of service/auth.py."""
    if settings.metrics_key is None:
        check_read(settings, key, None)
        return
    if key is None:
        raise ApiError(401, "missing_api_key", "/metrics needs the metrics key (RAG_METRICS_KEY)")
    if not secrets.compare_digest(key.encode("utf-8"), settings.metrics_key.encode("utf-8")):
        raise ApiError(401, "invalid_api_key", "the key is not the metrics key (RAG_METRICS_KEY)")
