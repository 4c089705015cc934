"""Queries during a stream of updates, over real HTTP: no errors, consistent `index_version`s.

A uvicorn server on loopback (fake embedder) answers searches from several threads while a writer
adds, replaces and removes documents. Every query must succeed; the version each response names
must be one the writer was acknowledged (or the starting one); each reader must see versions in
commit order, never going back; and every document a response cites must exist in the
generation that response names, so no response mixes two generations. At the end the index holds
exactly what the writer's acknowledged changes say.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corpus import load_corpus
from index.embedding import HashingEmbedder
from service.app import create_app
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, make_settings
from tests.live_server import live_server

READERS = 4
WRITES = 24
QUERIES = ["Gwadar harbour shipping bulletin", "security dialogue Pakistan", "defence pact"]


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=HashingEmbedder())
    engine.sync(load_corpus([BUNDLED_CORPUS]))
    with live_server(create_app(engine.settings, engine=engine)) as url:
        yield url


def test_queries_during_updates_see_whole_generations_in_order(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=60) as client:
        start = client.get("/documents").json()
    documents_at = {start["index_version"]: {d["id"] for d in start["documents"]}}
    order = [start["index_version"]]  # versions in the order they were committed
    seen: list[list[tuple[str, set[str]]]] = [[] for _ in range(READERS)]
    failures: list[str] = []
    writing = threading.Event()
    writing.set()

    def read(reader: int) -> None:
        with httpx.Client(base_url=server_url, timeout=60) as client:
            number = 0
            while writing.is_set() or number < 3:
                response = client.get("/search", params={"q": QUERIES[number % len(QUERIES)], "k": 5})
                number += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text}")
                    continue
                body = response.json()
                seen[reader].append((body["index_version"], {r["document"]["id"] for r in body["results"]}))

    readers = [threading.Thread(target=read, args=(n,)) for n in range(READERS)]
    for thread in readers:
        thread.start()
    current = set(documents_at[order[0]])
    try:
        with httpx.Client(base_url=server_url, timeout=60) as client:
            for number in range(WRITES):
                doc_id = f"bulletin-{number - number % 3}"  # added, then replaced, then removed
                if number % 3 == 2:
                    response = client.delete(f"/documents/{doc_id}")
                    current.discard(doc_id)
                else:
                    text = f"Harbour bulletin {number}: Gwadar logged {number} shipping calls today."
                    response = client.post(
                        "/documents", json={"id": doc_id, "title": "Bulletin", "text": text}
                    )
                    current.add(doc_id)
                assert response.status_code == 200, response.text
                version = response.json()["index_version"]
                assert version not in documents_at, "every change makes a new generation"
                documents_at[version] = set(current)
                order.append(version)
    finally:
        writing.clear()
        for thread in readers:
            thread.join()

    assert failures == []
    rank = {version: position for position, version in enumerate(order)}
    for reader_seen in seen:
        assert reader_seen, "every reader got answers"
        positions = [rank[version] for version, _ in reader_seen]  # KeyError: a version never acked
        assert positions == sorted(positions), "a reader saw the index go back in time"
        for version, cited in reader_seen:
            assert cited <= documents_at[version], f"{version} cites documents it does not hold"
    observed = {version for reader_seen in seen for version, _ in reader_seen}
    assert len(observed) > 1, "the readers ran while the index changed"
    with httpx.Client(base_url=server_url, timeout=60) as client:
        final = client.get("/documents").json()
    assert final["index_version"] == order[-1]
    assert {d["id"] for d in final["documents"]} == documents_at[order[-1]]
