"""`/jobs`: submit a bulk ingest job, follow it, cancel it, list recent ones.

`POST /jobs/ingest` stores the job durably (service/jobs/store.py) and answers 202 at once; the
worker thread (service/jobs/runner.py) commits it in batches. Submitting and cancelling need an
admin key, as every write does; following and listing need read access (service/auth.py).
Under `/collections/{collection}` (service/routes/collections.py) the same routes work on that
collection's jobs; a job is only ever seen under the collection it writes to. The routes reach
the jobs through the app's `Jobs` (service/jobs/service.py): this process's own, or on a
cluster the jobs deployment's (service/sharded/jobs.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from service.auth import AdminAccess, ReadAccess
from service.collection_names import collection_of
from service.deps import WritableEngineDep
from service.document_input import UPLOAD_SCHEMA
from service.errors import FULL_DISK_RESPONSES, ApiError
from service.jobs.inputs import read_body
from service.jobs.records import JobRecord, JobState
from service.jobs.service import Jobs
from service.schemas import ErrorResponse

DEFAULT_BATCH, MAX_BATCH = 500, 5_000
JOB_ID_PATTERN = r"^job-[0-9a-f]{16}$"
JOB_PATH_SUFFIX = "/jobs/ingest"  # the route whose body may be up to RAG_MAX_JOB_BYTES

router = APIRouter(tags=["jobs"])


class JobErrorOut(BaseModel):
    line: int = Field(description="Line of the NDJSON body, item of the JSON list, or file (1-based).")
    id: str | None = Field(description="The document's id (a file's name) when it could be read.")
    reason: str = Field(description="Why the document was refused, as `POST /documents` would say.")


class JobOut(BaseModel):
    id: str = Field(description="The job's id, as `POST /jobs/ingest` returned it.")
    collection: str = Field(description="The collection the job writes to.")
    state: JobState = Field(description="`queued`, `running`, or final: `succeeded`, `failed`, `cancelled`.")
    done: int = Field(description="Documents processed (committed or refused); only goes up.")
    total: int = Field(description="Documents in the job.")
    errors: list[JobErrorOut] = Field(description="Refused documents (the first 1000).")
    errors_total: int = Field(description="Refused documents in all.")
    index_version: str | None = Field(description="The index version of the job's last commit.")
    reason: str | None = Field(description="Why the job failed or was cancelled.")
    cancel_requested: bool = Field(description="`DELETE` asked the job to stop after its current batch.")
    created: str = Field(description="When the job was accepted (ISO 8601, UTC).")
    updated: str = Field(description="When its record last changed (ISO 8601, UTC).")


class JobListOut(BaseModel):
    jobs: list[JobOut] = Field(description="The collection's recent jobs, newest first.")


def job_out(record: JobRecord) -> JobOut:
    body: dict[str, Any] = record.to_dict()
    for moment in ("created", "updated"):
        body[moment] = dt.datetime.fromtimestamp(body[moment], dt.UTC).isoformat(timespec="milliseconds")
    for name in ("kind", "batch_size"):
        body.pop(name)
    return JobOut.model_validate(body)


async def _jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


JobsDep = Annotated[Jobs, Depends(_jobs)]
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The id `POST /jobs/ingest` returned.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "`job_not_found`: no such job in this collection."}
}
SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON or multipart body."},
    401: {"model": ErrorResponse, "description": "Missing or unknown API key."},
    403: {"model": ErrorResponse, "description": "Not an admin key, or writes disabled on this server."},
    413: {"model": ErrorResponse, "description": "Body over RAG_MAX_JOB_BYTES."},
    415: {"model": ErrorResponse, "description": "Not NDJSON, a JSON list or multipart files."},
    422: {"model": ErrorResponse, "description": "No documents, not a list, or a bad `batch_size`."},
    503: {
        "model": ErrorResponse,
        "description": "`too_many_jobs`: too many jobs wait already; on a cluster, "
        "`jobs_unavailable`: its jobs deployment did not answer.",
    },
    **FULL_DISK_RESPONSES,
}


@router.post(
    "/jobs/ingest",
    operation_id="submit_ingest_job",
    summary="Submit a bulk ingest job",
    description="Add or replace many documents: NDJSON (one `DocumentIn` per line), a JSON list "
    "of them, or several uploaded files. The job is stored durably and answered at once with 202 "
    "and its id; documents are committed `batch_size` at a time, each checked as `POST /documents` "
    "checks it: a refused one is listed in the job's `errors` with its line while the rest go in.",
    status_code=202,
    response_model=JobOut,
    responses=SUBMIT_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {
                        "type": "array",
                        "minItems": 1,
                        "description": "`DocumentIn` objects; an item that is not one is refused alone.",
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "array", "items": UPLOAD_SCHEMA["properties"]["file"]}
                        },
                    }
                },
            },
        }
    },
)
async def submit_job(
    request: Request,
    response: Response,
    _: AdminAccess,
    _writable: WritableEngineDep,  # the collection's name checked and its index openable, up front
    jobs: JobsDep,
    batch_size: Annotated[
        int, Query(ge=1, le=MAX_BATCH, description="Documents per commit (one segment each).")
    ] = DEFAULT_BATCH,
) -> JobOut:
    job_input = await read_body(request)
    record = await jobs.create(collection_of(request.path_params), job_input, batch_size)
    response.headers["Location"] = f"{request.url.path.removesuffix('/ingest')}/{record.id}"
    return job_out(record)


@router.get(
    "/jobs",
    operation_id="list_jobs",
    summary="List recent jobs",
    description="The collection's recent ingest jobs, newest first: every unfinished one and the "
    "last finished ones (older records are forgotten).",
    response_model=JobListOut,
)
async def list_jobs(_: ReadAccess, request: Request, jobs: JobsDep) -> JobListOut:
    records = await jobs.listing(collection_of(request.path_params))
    return JobListOut(jobs=[job_out(r) for r in records])


_GET_NAME = "get_job"


@router.get(
    "/jobs/{job_id}",
    name=_GET_NAME,
    operation_id="get_job",
    summary="Follow a job",
    description="A job's state and progress: `done` of `total` documents, refused ones in `errors`.",
    response_model=JobOut,
    responses=NOT_FOUND,
)
async def get_job(_: ReadAccess, request: Request, jobs: JobsDep, job_id: JobId) -> JobOut:
    return job_out(_found(await jobs.get(job_id), request, job_id))


@router.delete(
    "/jobs/{job_id}",
    operation_id="cancel_job",
    summary="Cancel a job",
    description="A queued job is cancelled at once; a running one after its current batch (the "
    "answer says `cancel_requested`; follow it to `cancelled`). What was committed stays; nothing "
    "more is applied. A finished job is a 409.",
    status_code=202,
    response_model=JobOut,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorResponse, "description": "`job_finished`: nothing left to cancel."},
    },
)
async def cancel_job(_: AdminAccess, request: Request, jobs: JobsDep, job_id: JobId) -> JobOut:
    _found(await jobs.get(job_id), request, job_id)
    record = _found(await jobs.request_cancel(job_id), request, job_id)
    if record.finished and not record.cancel_requested:
        raise ApiError(409, "job_finished", f"job {job_id} is already {record.state}")
    return job_out(record)


def _found(record: JobRecord | None, request: Request, job_id: str) -> JobRecord:
    if record is None or record.collection != collection_of(request.path_params):
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in this collection")
    return record
