"""Bad input: every limit refused with a 4xx naming it, and nothing stored.

Body size (declared and chunked), query length, `k`, document size, upload type, binary and
non-UTF-8 uploads, empty documents, ids with path characters, wrong content types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.storage.store import IndexStore
from service.app import create_app
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION

LIMITS = {
    "max_body_bytes": 4_000,
    "max_document_chars": 1_000,
    "max_query_chars": 100,
    "max_k": 10,
    "allowed_upload_types": [".txt", ".md", ".html"],
    "max_field_chars": 200,
    "max_metadata_bytes": 500,
}


@pytest.fixture
def limited(fake_engine: Engine) -> Iterator[TestClient]:
    settings = fake_engine.settings.model_copy(update=LIMITS)
    with TestClient(create_app(settings, engine=fake_engine)) as client:
        yield client


def assert_refused(response: Any, status: int, code: str, mentions: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert mentions in error["message"]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code", "mentions"),
    [
        ({"json": {"text": "x " * 3_000}}, 413, "body_too_large", "RAG_MAX_BODY_BYTES"),
        ({"json": {"text": "word " * 300}}, 413, "document_too_large", "RAG_MAX_DOCUMENT_CHARS"),
        ({"json": {"text": "   "}}, 422, "invalid_document", "no text"),
        # Empty once cleaned: zero-width characters and punctuation hold no word to search.
        ({"json": {"id": "z", "text": "\u200b"}}, 422, "invalid_document", "no text"),
        ({"json": {"id": "z", "text": "\u200d\u200c\u2060"}}, 422, "invalid_document", "no text"),
        ({"json": {"id": "z", "text": "."}}, 422, "invalid_document", "no text"),
        (
            {"json": {"id": "z", "title": "t" * 201, "text": "hi"}},
            413,
            "field_too_large",
            "RAG_MAX_FIELD_CHARS",
        ),
        ({"json": {"id": "z", "author": "a" * 201, "text": "hi"}}, 413, "field_too_large", "author"),
        (
            {"json": {"id": "z", "text": "hi", "metadata": {"notes": "n" * 600}}},
            413,
            "metadata_too_large",
            "RAG_MAX_METADATA_BYTES",
        ),
        (
            {"data": {"title": "t" * 201}, "files": {"file": ("a.txt", b"Some text here.", "text/plain")}},
            413,
            "field_too_large",
            "title",
        ),
        (
            {
                "content": b'{"id": "z", "text": "\\ud800 broken"}',
                "headers": {"content-type": "application/json"},
            },
            400,
            "malformed_json",
            "JSON",
        ),
        ({"json": {"id": "z", "text": "hi", "k": 1}}, 422, "invalid_request", "k"),
        ({"json": {"id": "z", "text": 5}}, 422, "invalid_request", "text"),
        ({"json": {"text": ""}}, 422, "invalid_request", "text"),
        ({"json": {"id": "../../etc/passwd", "text": "hi"}}, 422, "invalid_request", "id"),
        ({"json": {"id": "a/b", "text": "hi"}}, 422, "invalid_request", "id"),
        ({"json": {"text": "hi", "colour": "red"}}, 422, "invalid_request", "colour"),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
            "JSON",
        ),
        (
            {"content": b'{"text": "caf\xe9"}', "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
            "JSON",
        ),
        (
            {"content": b"text=hi", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
            "multipart",
        ),
        (
            {"files": {"file": ("a.pdf", b"%PDF-1.4 ...", "application/pdf")}},
            415,
            "unsupported_upload_type",
            "RAG_ALLOWED_UPLOAD_TYPES",
        ),
        ({"files": {"file": ("a.htm", b"<p>hi</p>", "text/html")}}, 415, "unsupported_upload_type", ".htm"),
        (
            {"files": {"file": ("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "text/plain")}},
            415,
            "binary_upload",
            "binary",
        ),
        ({"files": {"file": ("a.txt", b"caf\xe9 au lait", "text/plain")}}, 422, "invalid_document", "UTF-8"),
        ({"files": {"file": ("a.txt", b"  \n\n ", "text/plain")}}, 422, "empty_document", "empty"),
        (
            {
                "files": {
                    "file": (
                        "a.html",
                        b"<html><head><title>Empty</title></head><body></body></html>",
                        "text/html",
                    )
                }
            },
            422,
            "invalid_document",
            "no article text",
        ),
        (
            {"files": {"file": ("a.html", b"<nav>Home | About</nav>", "text/html")}},
            422,
            "invalid_document",
            "no article text",
        ),
        (
            {
                "files": {
                    "file": ("a.html", b"<html><body><nav>Home | About</nav></body></html>", "text/html")
                }
            },
            422,
            "invalid_document",
            "no article text",
        ),
        (
            {"files": {"file": ("a.md", b"---\nid: ../x\n---\nSome text here.", "text/markdown")}},
            422,
            "invalid_document",
            "invalid document id",
        ),
        (
            {"data": {"title": "no file"}, "files": {"other": ("a.txt", b"hi", "text/plain")}},
            422,
            "missing_file",
            "file",
        ),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_stored(
    limited: TestClient,
    fake_engine: Engine,
    request_kwargs: dict[str, Any],
    status: int,
    code: str,
    mentions: str,
) -> None:
    store = IndexStore(fake_engine.settings.index_dir)
    version, files = store.current_name(), sorted(p.name for p in store.root.rglob("*"))
    assert_refused(limited.post("/documents", **request_kwargs), status, code, mentions)
    assert store.current_name() == version and sorted(p.name for p in store.root.rglob("*")) == files
    assert len(limited.get("/documents").json()["documents"]) == 3


def test_chunked_body_over_the_limit_is_refused(limited: TestClient, fake_engine: Engine) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it streams
        yield b'{"text": "'
        for _ in range(100):
            yield b"y" * 100
        yield b'"}'

    version = IndexStore(fake_engine.settings.index_dir).current_name()
    response = limited.post("/documents", content=chunks(), headers={"content-type": "application/json"})
    assert_refused(response, 413, "body_too_large", "RAG_MAX_BODY_BYTES")
    assert IndexStore(fake_engine.settings.index_dir).current_name() == version


def test_chunked_body_under_the_limit_is_accepted(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "streamed", "text": "'
        yield b"Streamed text about a harbour. " * 10
        yield b'"}'

    response = limited.post("/documents", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json()["status"] == "added"
    assert limited.get("/documents/streamed").json()["text"].startswith("Streamed text about a harbour.")


@pytest.mark.parametrize(
    ("request_kwargs", "code", "mentions"),
    [
        ({"json": {"query": "why " * 30}}, "query_too_long", "RAG_MAX_QUERY_CHARS"),
        ({"json": {"query": EXAMPLE_QUESTION, "k": 11}}, "k_out_of_range", "RAG_MAX_K"),
    ],
)
def test_query_limits(limited: TestClient, request_kwargs: dict[str, Any], code: str, mentions: str) -> None:
    assert_refused(limited.post("/search", **request_kwargs), 422, code, mentions)


def test_search_body_over_the_limit(limited: TestClient) -> None:
    assert_refused(limited.post("/search", json={"query": "q" * 5_000}), 413, "body_too_large", "4000")


def test_delete_with_a_bad_id_is_refused(limited: TestClient) -> None:
    assert_refused(limited.delete("/documents/..%2E"), 422, "invalid_request", "document_id")
    assert len(limited.get("/documents").json()["documents"]) == 3
