"""`/documents`: list and read the corpus, add or replace a document, remove one.

Reads take one snapshot of the live generation, so a listing and the `index_version` it names
always agree even while documents change. Writes need admin access (service/auth.py), are
checked against the limits (service/limits.py), run one at a time, and answer only once the new
generation is on disk and live. `POST /documents` takes either a JSON document or a multipart
file upload (`.txt`, `.md`, `.html`); both become the same canonical `Document`. Under
`/collections/{collection}` (service/routes/collections.py) the same routes work on a named
collection, which `POST` creates when it does not exist yet.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from corpus import Document, parse_file_bytes
from corpus.cleaning import clean_article_text
from corpus.dates import ACCEPTED_DATE_FORMS, normalise_published
from corpus.documents import DOCUMENT_ID_PATTERN, ID_RULE, id_from_content
from index.write.changes import Delete, Upsert
from service.auth import AdminAccess, ReadAccess
from service.deps import EngineDep, SettingsDep, WritableEngineDep
from service.errors import FULL_DISK_RESPONSES, ApiError
from service.limits import checked_document, checked_upload
from service.results import document_response, document_summary, write_response
from service.schemas import (
    DocumentListResponse,
    DocumentResponse,
    DocumentWriteResponse,
    ErrorResponse,
    WriteStatus,
)

router = APIRouter(tags=["documents"])

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
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON or multipart body."},
    401: {"model": ErrorResponse, "description": "Missing or unknown API key."},
    403: {"model": ErrorResponse, "description": "Not an admin key, or writes disabled on this server."},
    413: {"model": ErrorResponse, "description": "Body or document over its size limit."},
    415: {"model": ErrorResponse, "description": "Unsupported content type, upload type or binary file."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid document: empty text, bad id, bad field, a date that cannot be read without guessing.",
    },
    **FULL_DISK_RESPONSES,
}


@router.get(
    "/documents",
    operation_id="list_documents",
    summary="List documents",
    description="All documents in the index with their citation metadata and length, sorted by id.",
    response_model=DocumentListResponse,
)
def list_documents(engine: EngineDep, _: ReadAccess) -> DocumentListResponse:
    listing = engine.listing()
    return DocumentListResponse(
        index_version=listing.version, documents=[document_summary(d) for d in listing.documents]
    )


@router.get(
    "/documents/{document_id}",
    operation_id="get_document",
    summary="Get one document",
    description="One document with its full canonical text. Every `start`/`end` offset returned by "
    "`/search` indexes into this `text`, so `text[start:end]` is the cited passage.",
    response_model=DocumentResponse,
    responses={404: {"model": ErrorResponse, "description": "No document with that id."}},
)
def get_document(
    engine: EngineDep,
    _: ReadAccess,
    document_id: Annotated[str, Path(description="The document id, as returned by search.")],
) -> DocumentResponse:
    found = engine.document_at(document_id)  # one commit for the text and the version it is cited with
    return document_response(found.documents[0], found.version)


@router.post(
    "/documents",
    operation_id="add_document",
    summary="Add or replace a document",
    description="Add a document, or replace the one with the same id. Send JSON (`DocumentIn`) or "
    "a multipart upload with a `file` (.txt, .md with YAML front matter, or an .html news page, "
    "whose article text is extracted) and optional fields overriding the file's metadata. "
    "Sending content that is already indexed changes nothing (`unchanged`). The response comes "
    "once the change is on disk and live; it names the new `index_version`. Needs an admin key "
    "when keys are configured.",
    response_model=DocumentWriteResponse,
    responses=WRITE_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": DocumentIn.model_json_schema()},
                "multipart/form-data": {"schema": UPLOAD_SCHEMA},
            },
        }
    },
)
async def add_document(
    request: Request, _: AdminAccess, settings: SettingsDep, engine: WritableEngineDep
) -> DocumentWriteResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        document = _document_from_json(await request.body())
    elif content_type == "multipart/form-data":
        document = await _document_from_upload(request, settings)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send application/json or multipart/form-data, not {content_type or 'no content type'!r}",
        )
    checked_document(document, settings)
    result = await run_in_threadpool(engine.write, Upsert((document,)))
    status: WriteStatus = (
        "added"
        if document.id in result.added
        else "replaced"
        if document.id in result.replaced
        else "unchanged"
    )
    return write_response(status, document.id, result)


@router.delete(
    "/documents/{document_id}",
    operation_id="remove_document",
    summary="Remove a document",
    description="Remove one document. The response comes once the change is on disk and live. "
    "Needs an admin key when keys are configured.",
    response_model=DocumentWriteResponse,
    responses={**WRITE_ERRORS, 404: {"model": ErrorResponse, "description": "No document with that id."}},
)
async def remove_document(
    engine: EngineDep,
    _: AdminAccess,
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN.pattern, description=ID_DESCRIPTION)],
) -> DocumentWriteResponse:
    result = await run_in_threadpool(engine.write, Delete((document_id,)))
    return write_response("removed", document_id, result)


def _document_from_json(body: bytes) -> Document:
    try:
        record = DocumentIn.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_context=False)) from error
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


async def _document_from_upload(request: Request, settings: SettingsDep) -> Document:
    # `async with`: the uploaded file's temporary copy is closed whatever happens below.
    async with request.form(max_files=1, max_fields=len(UPLOAD_FIELDS)) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "missing_file", "a multipart upload needs a `file` part holding the document")
        filename = upload.filename or ""
        data = await upload.read()
        overrides = {
            name: value for name in UPLOAD_FIELDS if isinstance(value := form.get(name), str) and value
        }
    checked_upload(filename, data, settings)
    return parse_file_bytes(filename, data, overrides)
