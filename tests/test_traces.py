"""Traces: the spans of one search reach an in-memory exporter, one per stage, children of the
request's server span; the response names the trace. In-process (TestClient): the exporter has
to be in the process that serves. The SDK provider installed here is removed afterwards, so the
other tests' apps run untraced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from index.search.stages import STAGES
from service.app import create_app
from service.engine import Engine
from service.observability.tracing import wanted


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """An SDK provider exporting to memory, installed as the process's (as `opentelemetry-instrument`
    would install one), and the global state as it was afterwards."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(provider)
    try:
        yield memory
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


def test_one_search_is_one_trace_with_a_span_per_stage(
    fake_engine: Engine, exporter: InMemorySpanExporter
) -> None:
    with TestClient(create_app(fake_engine.settings, engine=fake_engine)) as client:
        exporter.clear()
        response = client.get("/search", params={"q": "Who visited Islamabad?"})
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    trace_id = response.headers["x-trace-id"]
    assert len(trace_id) == 32
    assert response.headers["traceparent"].startswith(f"00-{trace_id}-")
    assert {f"{span.context.trace_id:032x}" for span in spans} == {trace_id}
    server = [span for span in spans if span.parent is None]
    assert len(server) == 1 and server[0].name == "GET /search"
    stages = {span.name: span for span in spans if span.name in STAGES}
    assert set(stages) == set(STAGES)
    for span in stages.values():
        assert span.parent is not None and span.parent.span_id == server[0].context.span_id
        assert span.attributes is not None and span.attributes["rag.stage"] == span.name


def test_scrapes_are_not_traced(fake_engine: Engine, exporter: InMemorySpanExporter) -> None:
    with TestClient(create_app(fake_engine.settings, engine=fake_engine)) as client:
        exporter.clear()
        assert client.get("/metrics").status_code == 200
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize(
    ("environment", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SERVICE_NAME": "rag"}, False),
    ],
)
def test_the_otel_variables_decide(environment: dict[str, str], on: bool) -> None:
    assert wanted(environment) is on
