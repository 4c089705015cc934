"""`kill -9` of a real server in the middle of writes: nothing acknowledged is lost.

A uvicorn process (fake embedder) serves an index in a temporary directory. Round one kills it
at the worst moment of a commit: the new generation is complete on disk but CURRENT does not yet
name it (tests/slow_switch_app.py serves the app with a store that pauses there, and the test
waits until it sees that state on disk). Round two kills it at a random moment of a stream of writes.
After each kill the service is restarted on the same directory: it must start, every write that
got a 2xx must be there with its content, every acknowledged removal must still be removed, the
write in flight must be either wholly there or wholly absent, and the index must pass its
checksums. A restore is killed the same two ways: the index must then load, holding either the
commit before the restore or the restored snapshot.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from corpus import Document, load_corpus
from index.embedding import HashingEmbedder
from index.errors import IndexCorruptError
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.writer import IndexWriter
from service.app import create_app
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, make_settings
from tests.rag_server_process import ServerProcess
from tests.slow_switch_app import SLOW_SWITCH_APP

WAIT_LIMIT_SECONDS = 60  # bounds a polling loop; never asserted on


def article(number: int) -> dict[str, str]:
    return {
        "id": f"crash-{number}",
        "title": f"Bulletin {number}",
        "text": f"Bulletin {number}: the port authority logged {number * 7} ships and a new quay plan.",
    }


@contextmanager
def loaded_client(index_dir: Path) -> Iterator[TestClient]:
    """The app as `uvicorn service.app:create_app --factory` runs it (it loads the index after it
    starts: service/readiness.py), once `/readyz` says it has loaded."""
    with TestClient(create_app(make_settings(index_dir, embedder="hashing"))) as client:
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while client.get("/readyz").status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def assert_state(
    client: httpx.Client | TestClient, expected: dict[str, str | None], in_flight: dict[str, str]
) -> None:
    """Every acknowledged write present, every acknowledged removal absent, in-flight all-or-nothing."""
    assert client.get("/healthz").json()["status"] == "ok"
    for doc_id, text in expected.items():
        response = client.get(f"/documents/{doc_id}")
        if text is None:
            assert response.status_code == 404, doc_id
        else:
            assert response.status_code == 200, doc_id
            assert response.json()["text"] == text
    for doc_id, text in in_flight.items():
        response = client.get(f"/documents/{doc_id}")
        assert response.status_code == 404 or response.json()["text"] == text


def test_kill_9_mid_commit_and_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    index_dir, log = tmp_path / "index", tmp_path / "server.log"
    Engine.from_settings(make_settings(index_dir), embedder=HashingEmbedder()).sync(
        load_corpus([BUNDLED_CORPUS])
    )
    store = IndexStore(index_dir)
    expected: dict[str, str | None] = {}

    # Round one: kill between "commit point written" and "CURRENT switched".
    server = ServerProcess(index_dir, log, app=SLOW_SWITCH_APP, extra_env={"SLOW_SWITCH_SECONDS": "0.5"})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for number in range(3):
                assert client.post("/documents", json=article(number)).status_code == 200
                expected[f"crash-{number}"] = article(number)["text"]
            assert client.delete("/documents/crash-0").status_code == 200
            expected["crash-0"] = None
        on_disk_before = commit_points(store)
        in_flight = article(99)
        writer = threading.Thread(target=_post_ignoring_crash, args=(server.url, in_flight))
        writer.start()
        assert _wait_for_uncommitted_generation(store, on_disk_before)
        server.kill()
        writer.join()
    finally:
        server.stop()
    assert store.current_name() in on_disk_before  # the kill did land before the switch

    # Round two: restart, check, then kill at a random moment of a stream of writes.
    server = ServerProcess(index_dir, log)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert_state(client, expected, {"crash-99": in_flight["text"]})
        in_flight_round_two: dict[str, str] = {}
        acknowledged = _stream_writes_then_kill(server, expected, in_flight_round_two)
    finally:
        server.stop()
    assert acknowledged >= 3

    # The service comes back: the app a restart would run, in-process this time (a third server
    # start would only add its start-up time), on a fresh engine reading the same directory.
    with loaded_client(index_dir) as client:
        assert_state(client, expected, in_flight_round_two)
    reader = IndexReader.open(IndexStore(index_dir))  # checksums of every file verified
    assert {doc_id for doc_id, text in expected.items() if text} <= set(reader.document_ids())


def _post_ignoring_crash(url: str, document: dict[str, str] | None, path: str = "/documents") -> None:
    with contextlib.suppress(httpx.TransportError):  # the server is killed under this request
        httpx.post(f"{url}{path}", json=document, timeout=60)


def commit_points(store: IndexStore) -> set[str]:
    return {p.name for p in store.commits_dir.glob("*.json")}


def _wait_for_uncommitted_generation(store: IndexStore, before: set[str]) -> bool:
    """Wait until a new commit point is complete on disk but CURRENT does not name it yet."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while time.monotonic() < deadline:
        new = commit_points(store) - before
        if new and store.current_name() not in new:
            return True
        time.sleep(0.01)
    return False


def _stream_writes_then_kill(
    server: ServerProcess, expected: dict[str, str | None], in_flight: dict[str, str]
) -> int:
    """Writes (adds, and a removal now and then) until killed; returns how many were acknowledged.

    An operation moves from `in_flight` to `expected` only once its 2xx has arrived: the one the
    kill interrupts may or may not have been committed, and either outcome is correct."""
    acknowledged = threading.Event()
    count = [0]

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for number in range(100, 200):
                doc_id = f"crash-{number - 1}" if number % 4 == 3 else f"crash-{number}"
                text = article(number - 1 if number % 4 == 3 else number)["text"]
                in_flight[doc_id] = text
                expected.pop(doc_id, None)
                try:
                    if number % 4 == 3:
                        response = client.delete(f"/documents/{doc_id}")
                    else:
                        response = client.post("/documents", json=article(number))
                except httpx.TransportError:
                    return
                assert response.status_code == 200, response.text
                expected[doc_id] = None if number % 4 == 3 else text
                del in_flight[doc_id]
                count[0] += 1
                if count[0] >= 3:
                    acknowledged.set()

    writer = threading.Thread(target=stream)
    writer.start()
    acknowledged.wait(WAIT_LIMIT_SECONDS)
    time.sleep(random.uniform(0, 0.3))  # somewhere in the next write: embedding, staging or switch
    server.kill()
    writer.join()
    return count[0]


def test_kill_9_during_a_merge_loses_nothing(tmp_path: Path) -> None:
    """A server merges at start-up (the index has more small segments than the policy allows);
    it is killed once with the merge's commit point complete but CURRENT not yet switched, once at
    a random moment; every write made before, and a delete the merge must carry, survive both."""
    index_dir, log = tmp_path / "index", tmp_path / "server.log"
    store = IndexStore(index_dir)
    writer = IndexWriter(store, HashingEmbedder(), settings=IndexSettings())
    expected: dict[str, str | None] = {}
    for number in range(14):  # one segment each
        writer.upsert([Document(**article(number))])
        expected[f"crash-{number}"] = article(number)["text"]
    writer.delete(["crash-3"])
    expected["crash-3"] = None
    before = commit_points(store)
    server = ServerProcess(index_dir, log, app=SLOW_SWITCH_APP, extra_env={"SLOW_SWITCH_SECONDS": "2"})
    try:
        assert _wait_for_uncommitted_generation(store, before)
        server.kill()
    finally:
        server.stop()
    assert len(IndexReader.open(IndexStore(index_dir)).segments) == 13  # the merge never switched in

    server = ServerProcess(index_dir, log)  # merges again at start-up: killed somewhere in it
    time.sleep(random.uniform(0, 0.3))
    server.kill()
    server.stop()

    server = ServerProcess(index_dir, log)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert_state(client, expected, {})
            deadline = time.monotonic() + WAIT_LIMIT_SECONDS
            while client.get("/healthz").json()["segments"] >= 13 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.get("/healthz").json()["segments"] < 13  # merged at last
            assert_state(client, expected, {})
    finally:
        server.stop()


def test_kill_9_during_a_group_commit_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Eight writers: while one commit waits to switch CURRENT, the others queue and go into the
    next commit together. The server is killed with such a group's commit point on disk but not
    live: every acknowledged write survives, and the group's writes are all absent (none was
    acknowledged) or, had it switched, all present."""
    index_dir, log = tmp_path / "index", tmp_path / "server.log"
    Engine.from_settings(make_settings(index_dir), embedder=HashingEmbedder()).sync(
        load_corpus([BUNDLED_CORPUS])
    )
    store = IndexStore(index_dir)
    expected: dict[str, str | None] = {}
    in_flight: dict[str, str] = {}
    books = threading.Lock()
    server = ServerProcess(index_dir, log, app=SLOW_SWITCH_APP, extra_env={"SLOW_SWITCH_SECONDS": "0.4"})

    def write(first: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for number in range(first, 400, 8):
                document = article(number)
                with books:
                    in_flight[document["id"]] = document["text"]
                try:
                    response = client.post("/documents", json=document)
                except httpx.TransportError:
                    return
                assert response.status_code == 200, response.text
                with books:
                    expected[document["id"]] = in_flight.pop(document["id"])

    writers = [threading.Thread(target=write, args=(first,)) for first in range(8)]
    try:
        for thread in writers:
            thread.start()
        group = _wait_for_uncommitted_group(store)
        server.kill()
        for thread in writers:
            thread.join()
    finally:
        server.stop()
    assert group >= 2  # the kill landed inside a commit holding several writes
    assert len(in_flight) >= group
    with loaded_client(index_dir) as client:
        assert_state(client, expected, in_flight)
        assert len(expected) >= 1
    reader = IndexReader.open(IndexStore(index_dir))
    assert set(expected) <= set(reader.document_ids())


def _wait_for_uncommitted_group(store: IndexStore) -> int:
    """Wait until a commit point adding one segment of several documents is complete on disk but
    CURRENT does not name it yet; returns how many documents that segment holds (0: never seen)."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while time.monotonic() < deadline:
        live = store.current_name()
        for name in sorted(commit_points(store) - {live} if live else set()):
            if live is None or name < live:
                continue
            with contextlib.suppress(IndexCorruptError):  # cleaned up meanwhile: look again
                pending, current = store.read_commit(name), store.read_commit(live)
                added = len(pending.segments) == len(current.segments) + 1
                if added and pending.segments[-1].documents >= 2:
                    return pending.segments[-1].documents
        time.sleep(0.005)
    return 0


def test_kill_9_during_a_restore_leaves_the_old_or_the_restored_commit(tmp_path: Path) -> None:
    index_dir, log = tmp_path / "index", tmp_path / "server.log"
    store = IndexStore(index_dir)
    writer = IndexWriter(store, HashingEmbedder(), settings=IndexSettings())
    for number in range(3):
        writer.upsert([Document(**article(number))])
    store.snapshot("kept")
    restored = set(IndexReader.open(store).document_ids())
    writer.delete(["crash-0"])
    writer.upsert([Document(**article(7))])
    live = set(IndexReader.open(store).document_ids())

    # Once with the restore's commit point complete but CURRENT not yet switched to it.
    before = commit_points(store)
    server = ServerProcess(index_dir, log, app=SLOW_SWITCH_APP, extra_env={"SLOW_SWITCH_SECONDS": "2"})
    try:
        restoring = threading.Thread(
            target=_post_ignoring_crash, args=(server.url, None, "/admin/snapshots/kept/restore")
        )
        restoring.start()
        assert _wait_for_uncommitted_generation(store, before)
        server.kill()
        restoring.join()
    finally:
        server.stop()
    assert set(IndexReader.open(IndexStore(index_dir)).document_ids()) == live
    assert writer.recover().plan.damage is None  # every file of the live commit passes its checks

    # Once at a random moment of it.
    server = ServerProcess(index_dir, log)
    try:
        restoring = threading.Thread(
            target=_post_ignoring_crash, args=(server.url, None, "/admin/snapshots/kept/restore")
        )
        restoring.start()
        time.sleep(random.uniform(0, 0.1))
        server.kill()
        restoring.join()
    finally:
        server.stop()
    assert set(IndexReader.open(IndexStore(index_dir)).document_ids()) in (live, restored)
    assert writer.recover().plan.damage is None
    with loaded_client(index_dir) as client:
        assert client.post("/admin/snapshots/kept/restore").status_code == 200
        assert_state(client, {f"crash-{n}": article(n)["text"] for n in range(3)} | {"crash-7": None}, {})
