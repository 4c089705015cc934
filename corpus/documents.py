"""The document model: one canonical text plus the metadata a citation needs."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.errors import CorpusError

# Ids end up in URLs and file names: no path separators, no whitespace, no dot-only names.
DOCUMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def validate_document_id(doc_id: str) -> str:
    if not DOCUMENT_ID_PATTERN.fullmatch(doc_id):
        raise CorpusError(
            f"invalid document id {doc_id!r}: use 1-128 letters, digits, '_', '-', '.', ':', "
            "starting with a letter or digit"
        )
    return doc_id


def slugify(value: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", value).strip("-").lower()
    return slug[:128] or "document"


@dataclass(frozen=True)
class Document:
    """A document of the corpus. `text` is canonical: offsets everywhere point into it."""

    id: str
    text: str
    title: str = ""
    source: str = ""
    author: str = ""
    url: str = ""
    published: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_document_id(self.id)
        if not self.text.strip():
            raise CorpusError(f"document {self.id!r} has no text")

    @property
    def content_hash(self) -> str:
        return content_hash(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(
            id=str(data["id"]),
            text=str(data["text"]),
            title=str(data.get("title") or ""),
            source=str(data.get("source") or ""),
            author=str(data.get("author") or ""),
            url=str(data.get("url") or ""),
            published=str(data.get("published") or ""),
            metadata=dict(data.get("metadata") or {}),
        )


def content_hash(document: Document) -> str:
    """SHA-256 over everything that is stored about the document, so any edit changes it."""
    payload = json.dumps(document.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
