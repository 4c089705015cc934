"""OpenTelemetry traces, off by default: on when the standard `OTEL_*` variables ask for them.

Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`; `none` turns
it off), or `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, unless
`OTEL_SDK_DISABLED=true`. Then this process gets one SDK `TracerProvider` (service name from
`OTEL_SERVICE_NAME`, else `rag-service`; the OTLP/HTTP exporter reads the rest of its `OTEL_*`
settings itself) behind a batch span processor. A process whose SDK tracer provider is already
installed (by `opentelemetry-instrument`, or the program embedding the app) traces with that one,
whatever the variables say.

Each request is then one trace: the FastAPI instrumentation's server span (current while the
route runs, so a log line can read its trace id), with a child span per search stage
(service/observability/requests.py). Out of scope: metrics through OpenTelemetry (Prometheus has
them), logs, and tracing inside the sharded service's shard and encoder replicas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

DEFAULT_SERVICE_NAME = "rag-service"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
UNTRACED_ROUTES = "/metrics,/healthz,/readyz"  # scrapes and probes: a trace each would be noise


def wanted(environment: Mapping[str, str]) -> bool:
    """Whether the `OTEL_*` variables in `environment` ask for traces."""
    if environment.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environment.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return any(environment.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def tracer_provider() -> TracerProvider | None:
    """The process's SDK tracer provider when tracing is on, else None."""
    installed = trace.get_tracer_provider()
    if isinstance(installed, TracerProvider):
        return installed
    if not wanted(os.environ):
        return None
    return _provider_from_environment()


@lru_cache(maxsize=1)  # one per process: OpenTelemetry's global provider is set once
def _provider_from_environment() -> TracerProvider:
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter(os.environ.get("OTEL_TRACES_EXPORTER", ""))))
    trace.set_tracer_provider(provider)
    return provider


def _exporter(name: str) -> SpanExporter:
    if name.strip().lower() == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: from the OTEL_EXPORTER_OTLP_* variables


def instrument(app: FastAPI, provider: TracerProvider) -> trace.Tracer:
    """Trace `app`'s requests with `provider`; the tracer for the stage spans."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=UNTRACED_ROUTES,
        exclude_spans=["receive", "send"],  # one span per ASGI message would drown the stages
    )
    return provider.get_tracer("rag.search")
