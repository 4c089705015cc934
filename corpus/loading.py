"""Load documents from `.txt`, `.md` (YAML front matter), `.html` news pages and BEIR-style `.jsonl`.

One set of formats for every way in: `load_corpus` reads files and directories (`rag build`,
`rag add`), `parse_file_bytes` reads one uploaded file (`POST /documents`). A directory is read
recursively; files with other suffixes and hidden files are ignored, so a corpus directory can
hold a README or notes. Every loader returns canonical text: artefacts removed (see
`corpus.cleaning`), so the offsets computed later never point at "Page 3". A file that names no id
gets one from its name (`corpus.documents.id_from_name`).

Metadata fields are text: a list (say two authors in front matter) is joined with ", " on
purpose; a mapping in a text field is an error. `published` becomes ISO 8601
(`corpus.dates.normalise_published`), and a date that cannot be read without guessing is an error
naming the file. Further fields are kept as metadata, as given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from corpus.cleaning import clean_article_text
from corpus.dates import normalise_published
from corpus.documents import Document, id_from_name
from corpus.errors import CorpusError
from corpus.html import HTML_SUFFIXES, extract_article

FILE_SUFFIXES = (".txt", ".md", *HTML_SUFFIXES)  # one document per file
SUPPORTED_SUFFIXES = (*FILE_SUFFIXES, ".jsonl")
TEXT_FIELDS = ("title", "source", "author", "url", "published")
_KNOWN_FIELDS = ("id", *TEXT_FIELDS)
# A first line this short and without closing punctuation reads as a headline, not a paragraph.
_MAX_HEADLINE_WORDS = 20


def load_corpus(paths: Iterable[Path | str]) -> list[Document]:
    """All documents under `paths` (files or directories), in a stable order, ids unique."""
    documents: list[Document] = []
    seen: dict[str, Path] = {}
    for path in corpus_files(paths):
        for document in load_documents_file(path):
            if document.id in seen:
                raise CorpusError(
                    f"duplicate document id {document.id!r} in {path} (first seen in {seen[document.id]})"
                )
            seen[document.id] = path
            documents.append(document)
    return documents


def corpus_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """The files `load_corpus` reads under `paths`, in its order; CorpusError for a missing path
    or a named file of an unsupported type."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise CorpusError(f"{path}: unsupported file type (use {', '.join(SUPPORTED_SUFFIXES)})")
            yield path
        else:
            raise CorpusError(f"{path}: no such file or directory")


def load_documents_file(path: Path) -> list[Document]:
    if path.suffix.lower() == ".jsonl":
        return list(_load_jsonl(path))
    return [parse_file_bytes(path.name, path.read_bytes())]


def parse_file_bytes(filename: str, data: bytes, overrides: dict[str, Any] | None = None) -> Document:
    """The document in one `.txt`, `.md`, `.html` or `.htm` file's bytes; `overrides` win over
    the file's own fields."""
    text = _decode(filename, data)
    suffix = Path(filename).suffix.lower()
    fields: dict[str, Any]
    if suffix == ".md":
        fields, body = _split_front_matter(filename, text)
    elif suffix == ".txt":
        fields, body = _split_headline(text)
    elif suffix in HTML_SUFFIXES:
        fields, body = extract_article(filename, text)
    else:
        raise CorpusError(f"{filename}: unsupported file type {suffix or '(none)'!r}")
    fields.update({key: value for key, value in (overrides or {}).items() if value})
    fields.setdefault("id", id_from_name(Path(filename).stem))
    return _document_from_fields(filename, fields, body)


def _decode(filename: str, data: bytes) -> str:
    if b"\x00" in data:
        raise CorpusError(f"{filename}: binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"{filename}: not valid UTF-8 (byte {error.start}); convert the file to UTF-8"
        ) from error


def _split_front_matter(filename: str, text: str) -> tuple[dict[str, Any], str]:
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        return {}, text
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise CorpusError(f"{filename}: front matter opened with '---' but never closed")
    header, body = parts[0][3:], parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    try:
        fields = yaml.safe_load(header) or {}
    except yaml.YAMLError as error:
        raise CorpusError(f"{filename}: front matter is not valid YAML: {error}") from error
    if not isinstance(fields, dict):
        raise CorpusError(f"{filename}: front matter must be a mapping of fields")
    return dict(fields), body


def _split_headline(text: str) -> tuple[dict[str, Any], str]:
    cleaned = clean_article_text(text)
    first, _, rest = cleaned.partition("\n")
    words = first.split()
    if rest.strip() and 0 < len(words) <= _MAX_HEADLINE_WORDS and first.rstrip()[-1] not in ".:;,":
        return {"title": first.strip()}, rest
    return {}, cleaned


def _document_from_fields(origin: str, fields: dict[str, Any], body: str) -> Document:
    metadata = {key: value for key, value in fields.items() if key not in _KNOWN_FIELDS}
    extra = metadata.pop("metadata", None)
    if isinstance(extra, dict):
        metadata.update(extra)
    try:
        texts = {name: _as_text(name, fields.get(name)) for name in TEXT_FIELDS}
        texts["published"] = normalise_published(texts["published"])
        return Document(
            id=str(fields["id"]),
            text=clean_article_text(body),
            metadata=json.loads(json.dumps(metadata, default=str)),
            **texts,
        )
    except CorpusError as error:
        raise CorpusError(f"{origin}: {error}") from error


def _as_text(name: str, value: Any) -> str:
    """A metadata field as text: None is empty, a list is joined with ", " (several authors)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(part for part in (_as_text(name, item) for item in value) if part)
    if isinstance(value, dict):
        raise CorpusError(f"field {name!r} must be text or a list of texts, not a mapping")
    return str(value).strip()


def _load_jsonl(path: Path) -> Iterator[Document]:
    with path.open("rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            line = _decode(f"{path}:{line_number}", raw_line).strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(f"{path}:{line_number}: not valid JSON: {error.msg}") from error
            if not isinstance(record, dict):
                raise CorpusError(f"{path}:{line_number}: each line must be a JSON object")
            doc_id = record.pop("_id", None) or record.pop("id", None)
            if doc_id is None:
                raise CorpusError(f"{path}:{line_number}: missing '_id' or 'id'")
            record["id"] = str(doc_id)
            body = str(record.pop("text", "") or "")
            yield _document_from_fields(f"{path}:{line_number}", record, body)
