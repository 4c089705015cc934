"""A job's input: from the request body to the lines stored on disk, and each line to a document.

In scope: reading `POST /jobs/ingest`'s body (`read_body`) in one of three forms, each stored as
one line per document so that a job resumes by counting lines:

* `application/x-ndjson` (or `application/jsonl`): one `DocumentIn` JSON object per line, stored
  as sent; blank lines are skipped but counted, so an error's `line` is the line of the body;
* `application/json`: a list of `DocumentIn` objects; `line` is the item's position (1-based);
* `multipart/form-data`: one or more file parts (.txt, .md, .html, as `POST /documents` takes
  them), stored base64 in a JSON line; `line` is the file's position and an error's `id` its name.

and turning a stored line into a checked `Document` (`document_of`), with exactly the rules of
`POST /documents` (service/document_input.py), or into the `JobError` saying why not
(`refusal`). A body that is not one of these forms is a 4xx and nothing is stored; a line that
breaks a rule only refuses that document. Out of scope: storing (service/jobs/store.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from corpus import CorpusError, Document
from service.config import Settings
from service.document_input import checked_document, document_from_file, document_from_json
from service.errors import ApiError, validation_summary
from service.jobs.records import InputKind, JobError

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/ndjson"})
MAX_FILES = 10_000  # file parts of one multipart job


@dataclass(frozen=True)
class JobInput:
    kind: InputKind
    data: bytes  # the lines as stored
    total: int  # documents (non-blank lines)


async def read_body(request: Request) -> JobInput:
    """The job input in `request`'s body; `ApiError` (400, 415, 422) when there is none to take."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in NDJSON_TYPES:
        data = await request.body()
        found = _with_total("documents", data)
    elif content_type == "application/json":
        found = _from_json_list(await request.body())
    elif content_type == "multipart/form-data":
        found = await _from_files(request)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send application/x-ndjson (one document per line), application/json (a list of "
            f"documents) or multipart/form-data (files), not {content_type or 'no content type'!r}",
        )
    if found.total == 0:
        raise ApiError(422, "empty_job", "the job holds no documents")
    return found


def _with_total(kind: InputKind, data: bytes) -> JobInput:
    return JobInput(kind, data, sum(1 for line in data.split(b"\n") if line.strip()))


def _from_json_list(body: bytes) -> JobInput:
    try:
        items = json.loads(body)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(400, "malformed_json", f"the request body is not valid JSON: {error}") from error
    if not isinstance(items, list):
        raise ApiError(422, "not_a_list", "an application/json job is a list of documents")
    lines = [json.dumps(item, ensure_ascii=False) for item in items]
    return JobInput("documents", "\n".join(lines).encode("utf-8"), len(lines))


async def _from_files(request: Request) -> JobInput:
    lines = []
    async with request.form(max_files=MAX_FILES, max_fields=0) as form:
        for _, part in form.multi_items():
            if isinstance(part, UploadFile):
                data = await part.read()
                line = {"filename": part.filename or "", "data": base64.b64encode(data).decode("ascii")}
                lines.append(json.dumps(line))
    if not lines:
        raise ApiError(422, "missing_file", "a multipart job needs one or more file parts")
    return JobInput("files", "\n".join(lines).encode("ascii"), len(lines))


def input_lines(path: Path, skip: int = 0) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every document in a stored input, after the first `skip`."""
    with path.open("rb") as handle:
        seen = 0
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            seen += 1
            if seen > skip:
                yield number, line.rstrip(b"\r\n")


def document_of(kind: InputKind, line: bytes, settings: Settings) -> Document:
    """The checked document on a stored line; raises what `refusal` explains."""
    if kind == "documents":
        return checked_document(document_from_json(line), settings)
    upload = json.loads(line)
    data = base64.b64decode(upload["data"], validate=True)
    return checked_document(document_from_file(upload["filename"], data, {}, settings), settings)


REFUSED = (ValidationError, ApiError, CorpusError, ValueError, KeyError, binascii.Error)


def refusal(kind: InputKind, number: int, line: bytes, error: Exception) -> JobError:
    """Why `document_of` refused the document on line `number`."""
    if isinstance(error, ValidationError):
        errors = [dict(e) for e in error.errors(include_url=False, include_context=False)]
        if any(e.get("type") == "json_invalid" for e in errors):
            reason = "not a valid JSON object"
        else:
            reason = validation_summary(errors)
    elif isinstance(error, ApiError):
        reason = error.message
    else:
        reason = str(error) or type(error).__name__
    return JobError(number, _id_on(kind, line), reason)


def _id_on(kind: InputKind, line: bytes) -> str | None:
    """The id a refused line names, if it can be read: a document's `id`, a file's name."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    found = value.get("id" if kind == "documents" else "filename") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None
