"""The document model: one canonical text plus the metadata a citation needs.

Also the rules every document passes, whichever way it arrives (a corpus file, an upload, a JSON
body, a BEIR line): a valid id, text with at least one letter or digit, every field valid Unicode
(no lone surrogates, which no UTF-8 file can store). And the two ways an id is made when none is
given: from a file name (`id_from_name`) or from the content (`id_from_content`); neither can give
two different documents the same id.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.errors import CorpusError

# Ids end up in URLs and file names: no path separators, no whitespace, no dot-only names.
DOCUMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
ID_RULE = "1-128 letters, digits, '_', '-', '.', ':', starting with a letter or digit"
_SLUG_LENGTH = 100  # leaves room for the hash suffix within 128 characters


def validate_document_id(doc_id: str) -> str:
    if not DOCUMENT_ID_PATTERN.fullmatch(doc_id):
        raise CorpusError(f"invalid document id {doc_id!r}: use {ID_RULE}")
    return doc_id


def slugify(value: str) -> str:
    """Lower-case ASCII letters and digits joined by '-'; empty when `value` has none."""
    return re.sub(r"[^A-Za-z0-9]+", "-", value).strip("-").lower()[:_SLUG_LENGTH].strip("-")


def id_from_name(name: str) -> str:
    """The id of a document known by a name (a file's stem): the name itself when it is a valid
    id, else its slug plus a hash of the whole name, so "Report 1" and "report-1" or two Persian
    file names never share an id. Stable: the same name always gives the same id."""
    if DOCUMENT_ID_PATTERN.fullmatch(name):
        return name
    return _hashed(slugify(name), name)


def id_from_content(title: str, text: str) -> str:
    """The id of a document sent without one: its title's slug plus a hash of title and text.
    Sending the same document again finds it (`unchanged`); a different document, even under
    the same title, gets a different id, so it can never replace another one."""
    return _hashed(slugify(title), json.dumps([title, text], ensure_ascii=False, allow_nan=False))


def _hashed(slug: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{slug}-{digest[:10]}" if slug else f"doc-{digest[:16]}"


def has_words(text: str) -> bool:
    """At least one letter or digit, in any script: zero-width characters, punctuation or
    white space alone are not a document."""
    return any(character.isalnum() for character in text)


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
        if not has_words(self.text):
            raise CorpusError(f"document {self.id!r} has no text (no letter or digit after cleaning)")
        try:
            json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise CorpusError(
                f"document {self.id!r} contains text that is not valid Unicode (a lone surrogate)"
            ) from error
        except (TypeError, ValueError) as error:
            raise CorpusError(f"document {self.id!r} has metadata that is not JSON: {error}") from error

    @property
    def content_hash(self) -> str:
        return content_hash(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(**_fields(data))

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Document:
        """A document as the index stored it, not checked again: it was checked when it was
        written (`__post_init__`), and its segment's checksums vouch it is unchanged. Searches
        read documents back all the time, and the check (a JSON encoding of the whole document)
        cost more than the read."""
        document = object.__new__(cls)
        for name, value in _fields(data).items():
            object.__setattr__(document, name, value)  # frozen: set as dataclasses' __init__ does
        return document


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """A document's fields from its dictionary form (`Document.to_dict`), missing ones empty."""
    return {
        "id": str(data["id"]),
        "text": str(data["text"]),
        "title": str(data.get("title") or ""),
        "source": str(data.get("source") or ""),
        "author": str(data.get("author") or ""),
        "url": str(data.get("url") or ""),
        "published": str(data.get("published") or ""),
        "metadata": dict(data.get("metadata") or {}),
    }


def content_hash(document: Document) -> str:
    """SHA-256 over everything that is stored about the document, so any edit changes it."""
    payload = json.dumps(document.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
