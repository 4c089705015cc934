"""What is written reads back exactly, and an index that exists is never replaced by an empty one.

Round trips: whole generations written and loaded again, over arbitrary Unicode in every field
(U+0085 NEL, U+2028, U+2029, lone CR, NUL, every plane) and arbitrary metadata. Damage: an index
that exists but cannot be loaded stops every writer (build, add, remove) with a message that says
what to do, and nothing on disk changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpus import Document
from index.embedding import HashingEmbedder
from index.errors import IndexCorruptError
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.writer import IndexWriter

# Every code point UTF-8 can store: surrogates are refused when a document is made.
ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    return Document(
        id=draw(st.from_regex(r"[a-z][a-z0-9_.:-]{0,12}", fullmatch=True)),
        # A word somewhere, so the document is never empty; the rest is anything at all.
        text=draw(ANY_TEXT) + " word " + draw(ANY_TEXT),
        title=draw(ANY_TEXT),
        source=draw(ANY_TEXT),
        author=draw(ANY_TEXT),
        url=draw(ANY_TEXT),
        published=draw(ANY_TEXT),
        metadata=draw(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=3)),
    )


def writer_for(root: Path) -> IndexWriter:
    return IndexWriter(IndexStore(root), HashingEmbedder(), settings=IndexSettings())


def unique_ids(items: list[Document]) -> list[Document]:
    return list({document.id: document for document in items}.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(documents(), min_size=1, max_size=4).map(unique_ids))
@example(batch=[Document(id="nel", text="Talks ended\u0085 then resumed in Islamabad.", title="NEL\u0085")])
@example(batch=[Document(id="breaks", text=f"a{LINE_BREAKS}b \x00 c\rd", metadata={"k\u2028": "v\u2029"})])
def test_any_text_reads_back_exactly_in_a_new_process(tmp_path_factory: Any, batch: list[Document]) -> None:
    root = tmp_path_factory.mktemp("roundtrip")
    writer_for(root).upsert(batch[:1])
    writer_for(root).upsert(batch[1:])  # a second segment
    writer_for(root).merge(force=True)  # and a merge of the two: every format written twice
    # A new store object reads from disk, as the next process would.
    reader = IndexReader.open(IndexStore(root))
    assert sorted(reader.documents(), key=lambda d: d.id) == sorted(batch, key=lambda d: d.id)
    for row in range(reader.chunk_count):
        chunk = reader.chunk(row)
        assert reader.document(chunk.document_id).text[chunk.start : chunk.end] == chunk.text  # type: ignore[union-attr]


def test_a_later_write_keeps_an_earlier_write_with_a_line_separator(tmp_path: Path) -> None:
    first = Document(id="nel-probe", title="NEL probe", text="Talks ended\u0085 then resumed in Islamabad.")
    second = Document(id="after-nel", title="After", text="A later dispatch about the Gwadar port.")
    writer_for(tmp_path).upsert([first])
    writer_for(tmp_path).upsert([second])
    reader = IndexReader.open(IndexStore(tmp_path))
    assert {d.id: d for d in reader.documents()} == {"after-nel": second, "nel-probe": first}


def damage_file(root: Path) -> None:
    commit = IndexStore(root).current()
    path = root / "segments" / commit.segments[0].name / "documents.jsonl"  # type: ignore[union-attr]
    path.write_bytes(path.read_bytes()[:-20])


def empty_current(root: Path) -> None:
    (root / "CURRENT").write_text("")


def lose_current(root: Path) -> None:
    (root / "CURRENT").unlink()


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", [damage_file, empty_current, lose_current])
@pytest.mark.parametrize("writer", ["build", "add", "remove"])
def test_a_damaged_index_stops_every_writer_and_changes_nothing(
    tmp_path: Path, bundled_documents: list[Document], damage: Any, writer: str
) -> None:
    writer_for(tmp_path).sync(bundled_documents)
    writer_for(tmp_path).upsert([Document(id="over-http", text="Added over HTTP.")])
    damage(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(IndexCorruptError, match="Nothing was changed") as raised:
        if writer == "build":
            writer_for(tmp_path).sync(bundled_documents)
        elif writer == "add":
            writer_for(tmp_path).upsert([Document(id="new", text="New text.")])
        else:
            writer_for(tmp_path).delete(["over-http"])
    assert "move it aside" in str(raised.value)
    after = snapshot(tmp_path)
    after.pop(".write.lock", None)
    before.pop(".write.lock", None)
    assert after == before


def test_the_cli_and_the_server_refuse_a_damaged_index(
    tmp_path: Path, bundled_documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from service import cli as cli_module
    from service.config import get_settings
    from tests.conftest import engine_with_fake_embedder

    index = tmp_path / "index"
    writer_for(index).sync(bundled_documents)
    damage_file(index)
    before = snapshot(index)
    monkeypatch.setenv("RAG_INDEX_DIR", str(index))
    monkeypatch.setattr(cli_module, "_engine", engine_with_fake_embedder)
    get_settings.cache_clear()
    article = tmp_path / "new.md"
    article.write_text("---\nid: new\n---\nA new article.", "utf-8")
    runner = CliRunner()
    try:
        # `make run` is `rag build` then `rag serve`: the first stops it.
        for arguments in (["build"], ["add", str(article)], ["remove", "nournews-larijani-visit"], ["serve"]):
            result = runner.invoke(cli_module.cli, arguments)
            assert result.exit_code == 1, (arguments, result.output)
            assert "cannot" in result.output and "Traceback" not in result.output, result.output
    finally:
        get_settings.cache_clear()
    after = snapshot(index)
    after.pop(".write.lock", None)
    before.pop(".write.lock", None)
    assert after == before


def test_writes_with_line_separators_survive_a_server_restart(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    """The reported sequence, against real server processes: two acknowledged writes, the first
    holding U+0085, then a restart; both must still be there."""
    import httpx

    from tests.rag_server_process import ServerProcess

    index, log = tmp_path / "index", tmp_path / "server.log"
    writer_for(index).sync(bundled_documents)
    writes = [
        {"id": "nel-probe", "title": "NEL probe", "text": "Talks ended\u0085 then resumed in Islamabad."},
        {"id": "sep-probe", "title": "LS\u2028PS\u2029", "text": "One\u2028two\u2029three\rfour \x00 five."},
        {"id": "after-nel", "title": "After", "text": "A later dispatch about the Gwadar port."},
    ]
    stored = {}
    server = ServerProcess(index, log)
    try:
        for write in writes:
            response = httpx.post(f"{server.url}/documents", json=write, timeout=60)
            assert response.status_code == 200 and response.json()["status"] == "added", response.text
            stored[write["id"]] = httpx.get(f"{server.url}/documents/{write['id']}", timeout=60).json()
    finally:
        server.stop()
    assert stored["nel-probe"]["text"] == writes[0]["text"]
    server = ServerProcess(index, log)
    try:
        for write in writes:
            response = httpx.get(f"{server.url}/documents/{write['id']}", timeout=60)
            assert response.status_code == 200, response.text
            assert response.json()["text"] == stored[write["id"]]["text"]
            assert response.json()["title"] == stored[write["id"]]["title"]
        assert httpx.get(f"{server.url}/healthz", timeout=60).json()["documents"] == 6
    finally:
        server.stop()
