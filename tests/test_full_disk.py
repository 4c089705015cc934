"""A full disk: writes are refused with a clear error, nothing half-written stays, nothing is lost.

Against a real server process on an index in a small tmpfs filled to the last byte: every write
route answers 507 `insufficient_storage` and keeps the connection open, every `rag` command that
writes prints one line and exits 1, no temporary file outlives the failed write (at the latest
the next start), and once space is freed writes work again with every acknowledged document
still there. An unexpected OSError other than a full disk is a JSON 500 that keeps the connection
too (checked in process: the handler must not re-raise).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from corpus import Document
from eval.cli import rag
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.writer import IndexWriter
from service.app import create_app
from service.config import get_settings
from service.engine import Engine
from tests.conftest import make_settings
from tests.rag_server_process import PROJECT_ROOT, ServerProcess

TMPFS_SIZE = "4m"
CLI_COMMAND = [sys.executable, "-m", "eval.cli"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of its own, unmounted whatever the test does."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(path: Path) -> None:
    """Write to `path` until the disk holding it has no byte left: large blocks, then smaller."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 4096, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(descriptor, block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(descriptor)


def leftovers(root: Path) -> list[str]:
    """Temporary files and staging directories anywhere in the index."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name)


def local_port(response: httpx.Response) -> int:
    """The client-side port of the connection a response came on: the same port, the same
    connection (a connection the server dropped would be replaced by a new one)."""
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


def assert_full_disk_error(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_storage" and error["details"] == []
    assert "disk holding the index is full" in error["message"]
    assert "nothing was changed" in error["message"] and "free" in error["message"]


def assert_one_line_full_disk_message(stderr: str) -> None:
    assert len(stderr.splitlines()) == 1, stderr
    assert "Error: the disk holding the index" in stderr and "is full" in stderr, stderr
    assert "nothing was changed" in stderr, stderr
    assert "Traceback" not in stderr


def test_a_full_disk_refuses_writes_cleanly_and_loses_nothing(
    tmp_path: Path, small_disk: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, log = small_disk / "index", tmp_path / "server.log"
    IndexWriter(IndexStore(index), HashingEmbedder(), settings=IndexSettings()).sync(bundled_documents)
    acknowledged = {document.id for document in bundled_documents}
    article = tmp_path / "late.md"
    article.write_text("---\nid: late-arrival\n---\nA dispatch that comes when the disk is full.", "utf-8")

    server = ServerProcess(index, log)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for number in range(3):  # three more segments: optimize has something to merge
                document = {"id": f"before-{number}", "text": f"Dispatch {number} about the Gwadar port."}
                assert client.post("/documents", json=document).status_code == 200
                acknowledged.add(f"before-{number}")
            assert client.post("/admin/snapshots", json={"name": "kept"}).status_code == 201
            health = client.get("/healthz").json()
            assert health["segments"] == 4 and health["documents"] == len(acknowledged)

            fill(small_disk / "filler")
            refused = client.post("/documents", json={"id": "refused", "text": "No room for this one."})
            assert_full_disk_error(refused)
            after = client.get("/healthz")  # the same connection, still open
            assert after.status_code == 200 and local_port(after) == local_port(refused)
            assert after.json()["index_version"] == health["index_version"]

            assert_full_disk_error(client.delete("/documents/before-0"))
            assert_full_disk_error(client.post("/admin/snapshots", json={"name": "no-room"}))
            assert not (index / "snapshots" / "no-room").exists()
            assert leftovers(index / "snapshots") == []  # removed at once, not at the next start
            # A merge stages a whole new segment: it cannot, and the index stays as it was.
            assert_full_disk_error(client.post("/admin/optimize"))
            assert_full_disk_error(client.post("/admin/snapshots/kept/restore"))
            health_when_full = client.get("/healthz").json()
            assert health_when_full == health

        cli = subprocess.run(
            [*CLI_COMMAND, "add", str(article)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "RAG_INDEX_DIR": str(index), "RAG_EMBEDDER": "hashing", "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert cli.returncode == 1, cli.stderr
        assert_one_line_full_disk_message(cli.stderr)
        assert str(index) in cli.stderr

        # The other writing commands, in process (each as a subprocess would cost seconds).
        monkeypatch.setenv("RAG_INDEX_DIR", str(index))
        monkeypatch.setenv("RAG_EMBEDDER", "hashing")
        get_settings.cache_clear()
        try:
            for arguments in (
                ["build", str(article)],
                ["remove", "before-1"],
                ["optimize"],
                ["snapshot", "cli-no-room"],
                ["restore", "kept"],
            ):
                result = CliRunner().invoke(rag, arguments)
                assert result.exit_code == 1, (arguments, result.output, result.exception)
                assert_one_line_full_disk_message(result.stderr)
        finally:
            get_settings.cache_clear()
    finally:
        server.stop()

    server = ServerProcess(index, log)  # a restart on the still full disk removes what is left
    try:
        assert leftovers(index) == []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/healthz").json()["index_version"] == health["index_version"]
            (small_disk / "filler").unlink()
            added = client.post("/documents", json={"id": "after", "text": "Room again on the disk."})
            assert added.status_code == 200 and added.json()["status"] == "added", added.text
            acknowledged.add("after")
            listed = client.get("/documents").json()["documents"]
            assert {document["id"] for document in listed} == acknowledged
            assert client.get("/healthz").json()["documents"] == len(acknowledged)
            assert client.post("/admin/optimize").status_code == 200
            assert client.get("/healthz").json()["segments"] == 1
    finally:
        server.stop()
    assert leftovers(index) == []


def failing_app(tmp_path: Path, error: Exception, monkeypatch: pytest.MonkeyPatch) -> TestClient:
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
        (RuntimeError("an unforeseen bug"), 500, "internal_error"),
    ],
)
def test_os_errors_of_a_write_are_json_errors_that_keep_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, code: str
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


def plant_leftovers(root: Path) -> tuple[Path, list[Path]]:
    """What failed or killed writers leave: a dead process's staging segment, temporary files of
    atomic writes, a half-made snapshot, a segment no commit names. Returns, first, a staging
    directory of this (live) process, which must be kept, then the leftovers."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    live = root / "segments" / f".tmp-s-0123456789abcdef-{os.getpid()}"
    planted = [
        root / ".CURRENT.tmp",
        root / "commits" / ".0000000009.json.tmp",
        root / "sources" / ".0000000009.json.tmp",
        root / "segments" / f".tmp-s-fedcba9876543210-{dead.pid}" / "documents.jsonl",
        root / "segments" / "s-0000000000000000" / "documents.jsonl",
        root / "snapshots" / ".tmp-half-made" / "segments" / "s-1" / "documents.jsonl",
    ]
    for path in [live / "documents.jsonl", *planted]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial", "utf-8")
    return live, planted


def test_a_server_start_removes_what_failed_writes_left(tmp_path: Path) -> None:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    engine.sync([Document(id="one", text="One dispatch.")])
    live, planted = plant_leftovers(engine.store.root)
    with TestClient(create_app(engine.settings, engine=engine)) as client:
        assert client.get("/healthz").json()["documents"] == 1
    assert [path for path in planted if path.exists()] == []
    assert live.is_dir()  # a live process may still be staging it


def test_a_writing_command_first_removes_what_failed_writes_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    Engine.from_settings(make_settings(index), embedder=HashingEmbedder()).sync(
        [Document(id="one", text="One.")]
    )
    live, planted = plant_leftovers(index)
    monkeypatch.setenv("RAG_INDEX_DIR", str(index))
    monkeypatch.setenv("RAG_EMBEDDER", "hashing")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(rag, ["snapshot", "kept"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert [path for path in planted if path.exists()] == [] and live.is_dir()
    assert (index / "snapshots" / "kept" / "commit.json").is_file()


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
    monkeypatch.setattr(cli_module, "_engine", lambda *_: engine)
    article = tmp_path / "two.md"
    article.write_text("---\nid: two\n---\nA second dispatch.", "utf-8")
    result = CliRunner().invoke(rag, ["add", str(article)])
    assert result.exit_code == 0, result.output
    assert "added 1" in result.stdout
    assert result.stderr.startswith("warning: the change is committed") and "is full" in result.stderr
    assert {document.id for document in engine.documents()} == {"one", "two"}


def test_an_ivf_index_written_to_a_full_disk_raises_the_os_error_it_is(small_disk: Path) -> None:
    """An approximate segment's IVF index is written by FAISS, whose own file writer turns a full
    disk into a RuntimeError (a 500 that closes the connection); the segment writer's must raise
    the OSError (ENOSPC: a 507)."""
    import faiss
    import numpy as np

    from index.storage.segments import _write_faiss_index

    vectors = np.random.default_rng(0).random((2_000, 64), dtype=np.float32)
    index = faiss.IndexFlatIP(64)
    index.add(vectors)
    fill(small_disk / "filler")
    with pytest.raises(OSError) as raised:
        _write_faiss_index(index, small_disk / "vectors.ivf")
    assert raised.value.errno == errno.ENOSPC
