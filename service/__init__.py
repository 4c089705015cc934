"""The HTTP service and the `rag` CLI: the only layer that reads settings.

In scope: configuration (`service.config`), the FastAPI app and its routes, request/response
schemas kept apart from the index's domain objects, error mapping, and the CLI. Out of scope:
how documents are chunked, embedded and searched (`index/`) and how quality is measured (`eval/`).
"""
