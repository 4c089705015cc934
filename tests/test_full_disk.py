"""A full disk: writes are refused with a clear error (507 over HTTP, one line from the CLI).

An unexpected OSError other than a full disk is a JSON 500 that keeps the connection too
(checked in process: the handler must not re-raise).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from corpus import Document
from eval.cli import rag
from index.embedding import HashingEmbedder
from service.app import create_app
from service.engine import Engine
from tests.conftest import make_settings


def failing_app(tmp_path: Path, error: OSError, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    engine.sync([Document(id="one", text="One dispatch.")])

    def refuse(*_: Any, **__: Any) -> None:
        raise error

    monkeypatch.setattr(engine, "upsert", refuse)
    # raise_server_exceptions: an error handled by a handler that re-raises (Starlette's
    # ServerErrorMiddleware, which then has uvicorn drop the connection) fails the request here.
    return TestClient(create_app(engine.settings, engine=engine), raise_server_exceptions=True)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), 507, "insufficient_storage"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 507, "insufficient_storage"),
        (OSError(errno.EIO, "Input/output error"), 500, "internal_error"),
    ],
)
def test_os_errors_of_a_write_are_json_errors_that_keep_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, status: int, code: str
) -> None:
    with failing_app(tmp_path, error, monkeypatch) as client:
        response = client.post("/documents", json={"id": "two", "text": "Two dispatches."})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert "Traceback" not in response.text and "Errno" not in response.text


def test_the_write_routes_document_507(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in (
        ("/documents", "post"),
        ("/documents/{document_id}", "delete"),
        ("/admin/snapshots", "post"),
        ("/admin/snapshots/{name}/restore", "post"),
        ("/admin/optimize", "post"),
    ):
        assert "507" in paths[path][method]["responses"], (path, method)


def test_a_full_disk_after_the_write_only_puts_the_merges_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rag add` commits, then merges: a merge the disk has no room for fails alone, with a
    warning, and the command succeeds (saying "nothing was changed" would be false)."""
    from service import cli as cli_module

    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    engine.sync([Document(id="one", text="One dispatch.")])

    def no_room(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine, "merge", no_room)
    monkeypatch.setattr(cli_module, "_engine", lambda settings: engine)
    article = tmp_path / "two.md"
    article.write_text("---\nid: two\n---\nA second dispatch.", "utf-8")
    result = CliRunner().invoke(rag, ["add", str(article)])
    assert result.exit_code == 0, result.output
    assert "added 1" in result.stdout
    assert result.stderr.startswith("warning: the change is committed") and "is full" in result.stderr
    assert {document.id for document in engine.documents()} == {"one", "two"}
