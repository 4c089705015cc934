"""Corpus loaders and artefact cleaning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus import CorpusError, Document, load_corpus, parse_file_bytes
from corpus.cleaning import clean_article_text
from corpus.documents import id_from_name


def test_bundled_corpus_metadata(bundled_documents: list[Document]) -> None:
    by_id = {d.id: d for d in bundled_documents}
    assert set(by_id) == {"irandaily-security-dialogues", "nournews-larijani-visit", "thepenpk-defence-pact"}
    assert by_id["irandaily-security-dialogues"].source == "Iran Daily"
    assert (
        by_id["irandaily-security-dialogues"].title
        == "Iran-Pakistan security dialogues deepened after 12-day war"
    )
    assert by_id["nournews-larijani-visit"].source == "Nournews"
    assert by_id["thepenpk-defence-pact"].source == "The Pen PK"
    assert by_id["thepenpk-defence-pact"].author == "Ahmed Ali"
    for document in bundled_documents:
        assert document.url == "" and document.published == ""
        assert "Page 3" not in document.text
        assert "Read More" not in document.text
        assert "https://" not in document.text
        assert document.text == document.text.strip()


def test_bundled_corpus_matches_the_shared_articles_minus_artefacts(
    bundled_documents: list[Document],
) -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "seed-articles"
    if not shared.is_dir():
        pytest.skip("../shared/seed-articles is not beside this checkout")
    raw = "\n".join(p.read_text("utf-8") for p in sorted(shared.glob("*.txt")))
    for document in bundled_documents:
        for paragraph in document.text.split("\n"):
            assert paragraph in raw  # no invented or altered article text


def test_cleaning_drops_artefact_lines_only() -> None:
    text = "Title\r\nFirst line.\nRead More: https://example.com/x/\n\n\n\nSecond line.\nPage 3\n"
    assert clean_article_text(text) == "Title\nFirst line.\n\nSecond line."
    assert clean_article_text("Read more about pages, not a link.") == "Read more about pages, not a link."


def test_txt_headline_becomes_title() -> None:
    document = parse_file_bytes("My Story.txt", b"A Short Headline\nBody sentence one. Two.\nPage 2\n")
    assert document.id == id_from_name("My Story") and document.id.startswith("my-story-")
    assert document.title == "A Short Headline"
    assert document.text == "Body sentence one. Two."


def test_txt_without_headline_keeps_first_paragraph() -> None:
    body = b"Nournews: This opening line is a full paragraph of text, ending with a period.\nMore.\n"
    document = parse_file_bytes("n.txt", body)
    assert document.title == ""
    assert document.text.startswith("Nournews: This opening line")


def test_markdown_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("---\nid: doc-1\ntitle: T\nsource: S\nauthor: A\ntags: [x]\n---\nBody text.\n", "utf-8")
    [document] = load_corpus([path])
    assert (document.id, document.title, document.source, document.author) == ("doc-1", "T", "S", "A")
    assert document.metadata == {"tags": ["x"]}
    assert document.text == "Body text."


def test_beir_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    lines = [
        {
            "_id": "4983",
            "title": "Microstructural development",
            "text": "Alterations of the architecture.",
            "metadata": {"y": 1},
        },
        {"id": "x2", "title": "", "text": "Second."},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", "utf-8")
    documents = load_corpus([path])
    assert [d.id for d in documents] == ["4983", "x2"]
    assert documents[0].title == "Microstructural development"
    assert documents[0].metadata == {"y": 1}


def test_directory_is_read_recursively_and_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Headline\nText b.", "utf-8")
    (tmp_path / "a.md").write_text("Text a.", "utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.txt").write_text("hidden", "utf-8")
    assert [d.id for d in load_corpus([tmp_path])] == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("bad.txt", b"caf\xe9 au lait", "not valid UTF-8"),
        ("bin.txt", b"\x00\x01\x02", "binary"),
        ("empty.txt", b"   \n ", "no text"),
        ("doc.pdf", b"%PDF-1.4", "unsupported file type"),
        ("x.md", b"---\nid: ../etc/passwd\n---\nbody", "invalid document id"),
        ("y.md", b"---\ntitle: [unclosed\n---\nbody", "not valid YAML"),
        ("z.md", b"---\ntitle: never closed\nbody", "never closed"),
    ],
)
def test_bad_documents_are_refused_with_a_reason(name: str, payload: bytes, message: str) -> None:
    with pytest.raises(CorpusError, match=message):
        parse_file_bytes(name, payload)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"title": "no id", "text": "x"}', "missing '_id'"),
        ("{not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"_id": "s", "text": "half a pair \\ud800"}', "not valid Unicode"),
        ('{"_id": "z", "text": "\\u200b."}', "no text"),
        ('{"_id": "m", "text": "x", "title": {"a": 1}}', "not a mapping"),
    ],
)
def test_bad_jsonl_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"_id": "ok", "text": "fine"}\n' + line + "\n", "utf-8")
    with pytest.raises(CorpusError, match=rf"c\.jsonl:2: .*{message}"):
        load_corpus([path])


def test_duplicate_ids_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("One.", "utf-8")
    (tmp_path / "b.md").write_text("---\nid: a\n---\nTwo.", "utf-8")
    with pytest.raises(CorpusError, match="duplicate document id 'a'"):
        load_corpus([tmp_path])
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus([tmp_path / "missing"])


def test_lists_in_text_fields_are_joined_and_other_metadata_kept(tmp_path: Path) -> None:
    path = tmp_path / "two-authors.md"
    path.write_text("---\nauthor: [Ahmed Ali, Sara Khan]\ntags: [energy, ports]\n---\nBody text.", "utf-8")
    document = load_corpus([path])[0]
    assert document.author == "Ahmed Ali, Sara Khan"
    assert document.metadata == {"tags": ["energy", "ports"]}


def test_directories_hold_html_pages_too(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        "<html><body><nav>Home</nav><article><h1>Port news</h1><p>Gwadar handled more ships this "
        "year than ever before, officials said on Monday.</p></article></body></html>",
        "utf-8",
    )
    (tmp_path / "menu.htm").write_text("<nav>Home | About</nav>", "utf-8")
    with pytest.raises(CorpusError, match=r"menu\.htm: no article text"):
        load_corpus([tmp_path])
    (tmp_path / "menu.htm").unlink()
    [document] = load_corpus([tmp_path])
    assert document.id == "page" and document.text.startswith("Gwadar handled more ships")


def test_content_hash_changes_with_any_field() -> None:
    base = Document(id="d", text="Text.")
    assert base.content_hash == Document(id="d", text="Text.").content_hash
    assert base.content_hash != Document(id="d", text="Text!").content_hash
    assert base.content_hash != Document(id="d", text="Text.", title="T").content_hash


def test_a_stored_document_reads_back_equal_to_the_checked_one() -> None:
    document = Document(
        id="a-1",
        text="Gwadar’s berth opened in 2024.",
        title="Ports",
        source="Iran Daily",
        published="2025-11-01",
        metadata={"tags": ["ports", "trade"], "n": 3},
    )
    stored = Document.from_stored(json.loads(json.dumps(document.to_dict())))
    assert stored == document and hash(stored.id) == hash(document.id)
    assert stored.to_dict() == document.to_dict()
    assert Document.from_stored({"id": "b", "text": "x"}) == Document(id="b", text="x")
