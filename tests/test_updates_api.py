"""Adding, replacing and removing documents through the API and the engine (fake embedder).

What is checked: a write is searchable at once and names a new `index_version`; the same
content again is a no-op; a replacement re-embeds only the new text; HTML uploads keep the article
and drop the page furniture; old commits are cleaned up but never the live one; a commit
made by another process is picked up by a running server; concurrent writers lose nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from corpus import Document
from index.embedding import HashingEmbedder
from index.search.reader import IndexReader
from index.storage.store import IndexStore
from service.cli import cli
from service.config import get_settings
from service.engine import Engine
from tests.conftest import CountingEmbedder, make_settings

PIPELINE = {
    "id": "gas-pipeline-deal",
    "title": "Gas pipeline deal signed",
    "text": "Iran and Pakistan signed a deal to finish the Gwadar gas pipeline by 2027.\n\n"
    "Officials said the financing problems had been settled with a new consortium.",
    "source": "Daily Test",
    "metadata": {"section": "energy"},
}
HTML_PAGE = b"""<html><head><title>Port deal | Harbour News</title>
<meta name="author" content="Jane Roe"></head><body>
<nav>Home | World | Sport | Subscribe</nav>
<article><h1>Port deal</h1>
<p>The container terminal at Chabahar will double its capacity under the agreement signed on Monday.</p>
<p>Shipping lines expect the first new berths to open within eighteen months, the ministry said.</p>
</article>
<footer>Copyright Harbour News. All rights reserved.</footer></body></html>"""


def search_ids(client: TestClient, query: str) -> list[str]:
    body = client.post("/search", json={"query": query, "k": 3, "mode": "bm25"}).json()
    return [result["document"]["id"] for result in body["results"]]


def test_add_is_searchable_and_resend_is_a_no_op(client: TestClient, fake_engine: Engine) -> None:
    before = client.get("/healthz").json()["index_version"]
    added = client.post("/documents", json=PIPELINE)
    assert added.status_code == 200
    body = added.json()
    assert body["status"] == "added" and body["document_id"] == "gas-pipeline-deal"
    assert body["index_version"] != before and body["documents"] == 4
    assert search_ids(client, "Gwadar gas pipeline consortium")[0] == "gas-pipeline-deal"
    stored = client.get("/documents/gas-pipeline-deal").json()
    assert stored["text"] == PIPELINE["text"] and stored["metadata"] == {"section": "energy"}
    segments = sorted(p.name for p in IndexStore(fake_engine.settings.index_dir).segments_dir.iterdir())

    again = client.post("/documents", json=PIPELINE).json()
    assert again["status"] == "unchanged" and again["index_version"] == body["index_version"]
    assert (
        sorted(p.name for p in IndexStore(fake_engine.settings.index_dir).segments_dir.iterdir()) == segments
    )


def test_replace_reembeds_only_the_changed_document(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    embedder = CountingEmbedder()
    engine = Engine.from_settings(make_settings(tmp_path / "index"), embedder=embedder)
    engine.sync(bundled_documents)
    engine.upsert([Document(id="notes", text="The old harbour plan was dropped in May.", title="Notes")])
    embedder.embedded.clear()

    result = engine.upsert(
        [Document(id="notes", text="A new harbour plan was approved in June.", title="Notes")]
    )
    assert result.replaced == ["notes"] and result.added == [] and result.removed == []
    assert embedder.embedded, "the new text must be embedded"
    assert all("June" in text or "new harbour plan" in text for text in embedder.embedded)
    assert engine.document("notes").text == "A new harbour plan was approved in June."


def test_json_without_id_gets_a_stable_one(client: TestClient) -> None:
    first = client.post("/documents", json={"text": "Wheat exports rose by a third this season."}).json()
    second = client.post("/documents", json={"text": "Wheat exports rose by a third this season."}).json()
    assert first["document_id"].startswith("doc-") and first["status"] == "added"
    assert second["document_id"] == first["document_id"] and second["status"] == "unchanged"
    titled = client.post("/documents", json={"title": "Wheat Exports!", "text": "They rose."}).json()
    assert titled["document_id"].startswith("wheat-exports-") and titled["status"] == "added"


@pytest.mark.parametrize(
    "titles",
    [
        ["گزارش اقتصادی", "تقرير سياسي"],  # no Latin letters: both once slugged to "document"
        ["!!!", "中文标题"],
        ["Editorial", "Editorial"],  # the same title over different texts
    ],
)
def test_a_post_without_id_never_replaces_another_document(client: TestClient, titles: list[str]) -> None:
    first = client.post("/documents", json={"title": titles[0], "text": "Talks on the gas pipeline resumed."})
    second = client.post("/documents", json={"title": titles[1], "text": "A later dispatch on the port."})
    assert first.json()["status"] == second.json()["status"] == "added"
    assert first.json()["document_id"] != second.json()["document_id"]
    for response, text in (
        (first, "Talks on the gas pipeline resumed."),
        (second, "A later dispatch on the port."),
    ):
        assert client.get(f"/documents/{response.json()['document_id']}").json()["text"] == text


def test_uploads_with_non_latin_names_never_replace_each_other(client: TestClient) -> None:
    ids = []
    for name, text in (
        ("گزارش.txt", "Gwadar port traffic doubled."),
        ("تقرير.txt", "Chabahar port expanded."),
    ):
        response = client.post("/documents", files={"file": (name, text.encode(), "text/plain")})
        assert response.json()["status"] == "added", response.text
        ids.append(response.json()["document_id"])
    assert ids[0] != ids[1] and all(doc_id.startswith("doc-") for doc_id in ids)


def test_upload_markdown_and_html(client: TestClient) -> None:
    markdown = b"---\nid: md-upload\ntitle: Markdown upload\nauthor: A. Writer\n---\nRail link talks resumed in Quetta.\n"
    response = client.post("/documents", files={"file": ("note.md", markdown, "text/markdown")})
    assert response.status_code == 200, response.text
    stored = client.get("/documents/md-upload").json()
    assert stored["author"] == "A. Writer" and stored["text"] == "Rail link talks resumed in Quetta."

    response = client.post(
        "/documents", files={"file": ("port.html", HTML_PAGE, "text/html")}, data={"source": "Harbour News"}
    )
    assert response.status_code == 200, response.text
    page = client.get("/documents/port").json()
    assert page["title"] == "Port deal" and page["author"] == "Jane Roe" and page["source"] == "Harbour News"
    assert "Chabahar will double its capacity" in page["text"]
    assert "eighteen months" in page["text"]
    for furniture in ("Subscribe", "Copyright", "Home | World"):
        assert furniture not in page["text"]
    assert search_ids(client, "Chabahar container terminal berths")[0] == "port"


def test_remove_then_404_and_unknown_id_changes_nothing(client: TestClient) -> None:
    version = client.post("/documents", json=PIPELINE).json()["index_version"]
    removed = client.delete("/documents/gas-pipeline-deal")
    assert removed.status_code == 200
    assert removed.json()["status"] == "removed" and removed.json()["index_version"] != version
    assert client.get("/documents/gas-pipeline-deal").status_code == 404
    assert "gas-pipeline-deal" not in search_ids(client, "Gwadar gas pipeline consortium")

    live = client.get("/healthz").json()["index_version"]
    missing = client.delete("/documents/gas-pipeline-deal")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "document_not_found"
    assert client.get("/healthz").json()["index_version"] == live


def test_old_commits_and_crash_leftovers_are_removed_but_never_the_live_one(
    client: TestClient, fake_engine: Engine
) -> None:
    store = IndexStore(fake_engine.settings.index_dir)
    stale = store.segments_dir / ".tmp-s-left-by-a-crash-999999999"  # a process that no longer runs
    stale.mkdir()
    for number in range(4):
        client.post("/documents", json={**PIPELINE, "text": f"Version {number} of the pipeline story."})
    commits = sorted(p.name for p in store.commits_dir.iterdir())
    assert len(commits) == 2 and store.current_name() == commits[-1]
    assert not stale.exists()
    assert IndexReader.open(store).version == client.get("/healthz").json()["index_version"]


def test_a_commit_by_another_process_is_picked_up(client: TestClient, fake_engine: Engine) -> None:
    # A second engine on the same directory stands for `rag add` run beside the server.
    other = Engine.from_settings(fake_engine.settings, embedder=HashingEmbedder())
    result = other.upsert([Document(id="from-cli", text="The cabinet approved the border market plan.")])
    health = client.get("/healthz").json()
    assert health["index_version"] == result.reader.version and health["documents"] == 4
    assert search_ids(client, "border market cabinet")[0] == "from-cli"


def test_concurrent_writers_lose_nothing(fake_engine: Engine) -> None:
    other = Engine.from_settings(fake_engine.settings, embedder=HashingEmbedder())
    errors: list[BaseException] = []

    def write(engine: Engine, number: int) -> None:
        try:
            engine.upsert([Document(id=f"parallel-{number}", text=f"Report number {number} on trade.")])
        except Exception as error:  # noqa: BLE001 - collected and reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(e, n)) for n, e in enumerate([fake_engine, other] * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = IndexReader.open(IndexStore(fake_engine.settings.index_dir))
    assert {f"parallel-{n}" for n in range(8)} <= set(final.document_ids())
    assert final.document_count == 3 + 8
    assert np.isfinite(final.chunk_vectors(list(range(int(final.bases[-1]))))).all()


def test_cli_add_and_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_EMBEDDER", "hashing")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        (tmp_path / "port.html").write_bytes(HTML_PAGE)
        (tmp_path / "more.jsonl").write_text(
            '{"_id": "j1", "title": "One", "text": "Rail freight grew."}\n'
            '{"_id": "j2", "title": "Two", "text": "Bus fares fell."}\n',
            "utf-8",
        )
        added = runner.invoke(cli, ["add", str(tmp_path / "port.html"), str(tmp_path / "more.jsonl")])
        assert added.exit_code == 0, added.output
        assert "added 3" in added.output
        again = runner.invoke(cli, ["add", str(tmp_path / "port.html")])
        assert again.exit_code == 0 and "unchanged" in again.output
        refused = runner.invoke(cli, ["remove", "j1", "no-such-doc"])
        assert refused.exit_code == 1 and "no-such-doc" in refused.output
        assert set(IndexReader.open(IndexStore(tmp_path / "index")).document_ids()) == {"port", "j1", "j2"}
        removed = runner.invoke(cli, ["remove", "j1", "j2"])
        assert removed.exit_code == 0 and "removed 2" in removed.output
        assert set(IndexReader.open(IndexStore(tmp_path / "index")).document_ids()) == {"port"}
    finally:
        get_settings.cache_clear()


def test_a_load_that_loses_the_race_with_cleanup_retries(
    fake_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits twice while this one reads: the commit point it was reading is
    cleaned up under it, and the load moves on to the new CURRENT instead of failing."""
    store = IndexStore(fake_engine.settings.index_dir)
    writer = Engine.from_settings(fake_engine.settings, embedder=HashingEmbedder())
    original = store.read_commit
    raced: list[str] = []

    def read_while_two_commits_land(name: str, *args: object) -> object:
        if not raced:
            raced.append(name)
            writer.upsert([Document(id="race-1", text="First racing commit.")])
            writer.upsert([Document(id="race-2", text="Second racing commit.")])
            assert not (store.commits_dir / name).exists(), "the commit point being read is gone"
        return original(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "read_commit", read_while_two_commits_land)
    reader = IndexReader.open(store)
    assert raced and raced[0] != reader.commit.file_name
    assert reader.commit.file_name == store.current_name()
    assert {"race-1", "race-2"} <= set(reader.document_ids())
