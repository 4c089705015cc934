"""What a client sends as one document, and how it becomes a checked canonical `Document`.

In scope, written once for every route that takes documents (`POST /documents` and the bulk
ingest jobs, service/jobs/): the JSON shape (`DocumentIn`) and its reading (`document_from_json`:
pydantic's rules, the text cleaned, the id derived from the content when none is given), an
uploaded file (`document_from_file`: the upload checks of service/limits.py, then the file's own
parser in corpus/), and the size limits every stored document passes (`checked_document`, from
service/limits.py, re-exported here so the routes import one module). Out of scope: where the
bytes come from (a request body, a multipart part, a line of a job's input) and what a failure
becomes (a 4xx for one document, an error entry for a job's line).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from corpus import Document, parse_file_bytes
from corpus.cleaning import clean_article_text
from corpus.dates import ACCEPTED_DATE_FORMS, normalise_published
from corpus.documents import DOCUMENT_ID_PATTERN, ID_RULE, id_from_content
from service.config import Settings
from service.limits import checked_document, checked_upload

__all__ = [
    "ID_DESCRIPTION",
    "UPLOAD_FIELDS",
    "DocumentIn",
    "checked_document",
    "document_from_file",
    "document_from_json",
]

ID_DESCRIPTION = ID_RULE
UPLOAD_FIELDS = ("id", "title", "source", "author", "url", "published")


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = Field(
        None,
        pattern=DOCUMENT_ID_PATTERN.pattern,
        description=f"Document id ({ID_DESCRIPTION}). A document with this id is replaced. Without "
        "one, the id is the title's slug plus a hash of title and text (`doc-<hash>` when the title "
        "has no Latin letters or digits): sending the same document again changes nothing, and a "
        "different document never replaces another.",
    )
    title: str = Field("", description="Title of the article.")
    text: str = Field(min_length=1, description="The article text (plain text).")
    source: str = Field("", description="Publication the article comes from.")
    author: str = Field("", description="Author.")
    url: str = Field("", description="Canonical URL.")
    published: str = Field(
        "",
        description=f"Publication date, stored as ISO 8601. Accepted: {ACCEPTED_DATE_FORMS}. A date "
        "that cannot be read without guessing (03/04/2025, a two-digit year, 'yesterday', a "
        "weekday that is not the date's, an unknown zone) is a 422.",
        examples=["2025-11-03", "3 November 2025", "2025-11-03T09:00:00+03:30"],
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Any further metadata.")

    @field_validator("published")
    @classmethod
    def _published_as_iso(cls, value: str) -> str:
        return normalise_published(value)


UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "A .txt, .md or .html file."},
        **{
            name: {"type": "string", "description": f"Overrides the file's {name}."} for name in UPLOAD_FIELDS
        },
    },
}


def document_from_json(body: bytes | str) -> Document:
    """The document a JSON object (`DocumentIn`) describes; pydantic's `ValidationError` (whose
    type is `json_invalid` when `body` is not JSON) when it breaks a rule."""
    record = DocumentIn.model_validate_json(body)
    text, title = clean_article_text(record.text), record.title.strip()
    return Document(
        id=record.id or id_from_content(title, text),
        text=text,
        title=title,
        source=record.source.strip(),
        author=record.author.strip(),
        url=record.url.strip(),
        published=record.published,
        metadata=record.metadata,
    )


def document_from_file(filename: str, data: bytes, overrides: dict[str, str], settings: Settings) -> Document:
    """The document in an uploaded file: `ApiError` (415/422) for a type the server does not
    accept, binary data or an empty file, `CorpusError` when its parser refuses it."""
    checked_upload(filename, data, settings)
    return parse_file_bytes(filename, data, overrides)
