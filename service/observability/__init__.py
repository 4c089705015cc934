"""Metrics and traces of the service (issue 23): Prometheus metrics at `/metrics`, OpenTelemetry
traces when the standard `OTEL_*` variables ask for them, per-stage timing of searches.

Modules: `metrics` (every metric's definition and name, one place; it imports nothing of the
service, so the engine and the error handlers record into it), `index_gauges` (the index's
sizes, read at scrape time), `requests` (the ASGI middleware: per-request counts and latency,
the stage hook, trace headers), `tracing` (the tracer provider and FastAPI instrumentation),
`install` (`GET /metrics`, its key, and the wiring into the app). Out of scope: request logs,
readiness and rate limits (their own modules), alerting rules.
"""
