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
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from corpus import Document
from corpus.documents import DOCUMENT_ID_PATTERN
from index.write.changes import Delete, Upsert
from service.auth import AdminAccess, ReadAccess
from service.deps import EngineDep, SettingsDep, WritableEngineDep
from service.document_input import (
    ID_DESCRIPTION,
    UPLOAD_FIELDS,
    UPLOAD_SCHEMA,
    DocumentIn,
    checked_document,
    document_from_file,
    document_from_json,
)
from service.errors import FULL_DISK_RESPONSES, ApiError
from service.results import document_response, document_summary, write_response
from service.schemas import (
    DocumentListResponse,
    DocumentResponse,
    DocumentWriteResponse,
    ErrorResponse,
    WriteStatus,
)

router = APIRouter(tags=["documents"])

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
        return document_from_json(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_context=False)) from error


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
    return document_from_file(filename, data, overrides, settings)
