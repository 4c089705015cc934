"""HTML news pages to canonical documents, and reading any single uploaded file by its suffix.

In scope: extracting the article body and its metadata (title, author, publication, date) from an
HTML page with trafilatura, which is made for news pages (menus, footers, comment threads and
"subscribe" boxes are dropped), then the same artefact cleaning as every other loader. Also
`parse_file_bytes`, the one entry point for a single file's bytes (`.txt`, `.md`, `.html`,
`.htm`), used by `POST /documents` uploads, and `load_files` for `rag add`. Out of scope: fetching pages
from the web, and which upload types a server accepts (service/limits.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corpus.documents import Document
from corpus.errors import CorpusError
from corpus.loading import (
    _decode,
    _document_from_fields,
    _id_from_filename,
    load_documents_file,
    parse_document_bytes,
)

HTML_SUFFIXES = (".html", ".htm")
# Only dates the page states for itself: a guessed date (say from "Copyright 2024") would be cited.
_DATE_SEARCH = {"extensive_search": False, "original_date": True}


def parse_html_bytes(filename: str, data: bytes, overrides: dict[str, Any] | None = None) -> Document:
    """The article in an HTML page as a Document; `overrides` win over what the page says."""
    import trafilatura  # imported here: it is slow to import and only uploads of HTML need it

    html = _decode(filename, data)
    extracted = trafilatura.extract(
        html,
        output_format="json",
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        date_extraction_params=_DATE_SEARCH,
    )
    if not extracted:
        raise CorpusError(f"{filename}: no article text found in the HTML page")
    page: dict[str, Any] = json.loads(extracted)
    title = str(page.get("title") or "").strip()
    fields: dict[str, Any] = {
        "title": title,
        "author": page.get("author"),
        "source": page.get("sitename") or page.get("source-hostname") or page.get("hostname"),
        "url": page.get("url") or page.get("source"),
        "published": page.get("date"),
    }
    fields = {key: value for key, value in fields.items() if value}
    fields.update({key: value for key, value in (overrides or {}).items() if value})
    fields.setdefault("id", _id_from_filename(filename))
    return _document_from_fields(filename, fields, _body_without_headline(str(page.get("text") or ""), title))


def _body_without_headline(text: str, title: str) -> str:
    # trafilatura keeps the <h1> as the first line; the title is stored apart, as for .md files.
    # Paragraphs come one per line; a blank line between them matches the other loaders.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and title and lines[0].casefold() == title.casefold():
        lines = lines[1:]
    return "\n\n".join(lines)


def parse_file_bytes(filename: str, data: bytes, overrides: dict[str, Any] | None = None) -> Document:
    """The document in one `.txt`, `.md`, `.html` or `.htm` file's bytes."""
    if Path(filename).suffix.lower() in HTML_SUFFIXES:
        return parse_html_bytes(filename, data, overrides)
    return parse_document_bytes(filename, data, overrides)


def load_files(paths: list[Path]) -> list[Document]:
    """Documents from files of any supported type, `.jsonl` included (one document per line)."""
    documents: list[Document] = []
    for path in paths:
        if path.suffix.lower() == ".jsonl":
            documents.extend(load_documents_file(path))
        else:
            documents.append(parse_file_bytes(path.name, path.read_bytes()))
    return documents
