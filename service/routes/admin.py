"""`/admin`: keep and restore snapshots of the index, go back to the last intact commit, and
force-merge it. Admin access only.

A snapshot keeps the live commit point by hard links (nearly free); restoring one makes it live
again as a new commit, so `index_version` still only goes forwards and a running server answers
from it at once. A restore checks every file of the snapshot first: a damaged one is refused
(409 `snapshot_damaged`, naming the file) and the index stays as it was. `/admin/recover` goes
back to the newest intact commit point when the live one is damaged and lists what that loses.
Out of scope: deleting snapshots (remove `snapshots/<name>` from the index directory) and
scheduling any of these.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from index.errors import DamagedSnapshotError, NoIntactCommitError
from service.auth import AdminAccess
from service.deps import EngineDep
from service.engine import CommitSummary
from service.errors import FULL_DISK_RESPONSES, ApiError
from service.schemas import (
    DamagedSnapshotOut,
    ErrorResponse,
    OptimizeResponse,
    RecoverResponse,
    RestoreResponse,
    SnapshotListResponse,
    SnapshotOut,
    SnapshotRequest,
    UnreadableSegment,
)

router = APIRouter(prefix="/admin", tags=["admin"])
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or unknown API key."},
    403: {"model": ErrorResponse, "description": "Not an admin key, or writes disabled on this server."},
}
WRITE_ERRORS = {**ERRORS, **FULL_DISK_RESPONSES}


def _out(name: str, commit: CommitSummary) -> SnapshotOut:
    return SnapshotOut(
        name=name, index_version=commit.version, documents=commit.documents, created_at=commit.created_at
    )


@router.post(
    "/snapshots",
    operation_id="create_snapshot",
    summary="Keep the live index as a snapshot",
    description="Keep the live commit as snapshot `name` (hard links to its immutable files).",
    response_model=SnapshotOut,
    status_code=201,
    responses={
        **WRITE_ERRORS,
        409: {
            "model": ErrorResponse,
            "description": "`snapshot_exists`: a snapshot of that name exists. Nothing was changed.",
        },
    },
)
async def create_snapshot(request: SnapshotRequest, engine: EngineDep, _: AdminAccess) -> SnapshotOut:
    try:
        commit = await run_in_threadpool(engine.snapshot, request.name)
    except FileExistsError as error:
        raise ApiError(409, "snapshot_exists", str(error)) from error
    return _out(request.name, commit)


@router.get(
    "/snapshots",
    operation_id="list_snapshots",
    summary="List snapshots",
    description="Every snapshot with the index version it keeps; damaged ones apart, with what is wrong.",
    response_model=SnapshotListResponse,
    responses=ERRORS,
)
def list_snapshots(engine: EngineDep, _: AdminAccess) -> SnapshotListResponse:
    intact, damaged = engine.snapshots()
    return SnapshotListResponse(
        snapshots=[_out(name, commit) for name, commit in intact],
        damaged=[DamagedSnapshotOut(name=name, problem=problem) for name, problem in damaged],
    )


@router.post(
    "/snapshots/{name}/restore",
    operation_id="restore_snapshot",
    summary="Make a snapshot the live index again",
    description="Every file of the snapshot is checked, then it becomes the live index as a new commit; "
    "it answers exactly as when it was taken.",
    response_model=RestoreResponse,
    responses={
        **WRITE_ERRORS,
        404: {"model": ErrorResponse, "description": "No snapshot of that name."},
        409: {
            "model": ErrorResponse,
            "description": "`snapshot_damaged`: a file of the snapshot is missing or fails its checksum "
            "(the message names it); nothing was changed.",
        },
    },
)
async def restore_snapshot(
    engine: EngineDep,
    _: AdminAccess,
    name: Annotated[str, Path(pattern=NAME_PATTERN, description="The snapshot's name.")],
) -> RestoreResponse:
    try:
        restored = await run_in_threadpool(engine.restore, name)
    except FileNotFoundError as error:
        raise ApiError(404, "snapshot_not_found", str(error)) from error
    except DamagedSnapshotError as error:
        raise ApiError(409, "snapshot_damaged", str(error)) from error
    return RestoreResponse(restored=_out(name, restored.kept), index_version=restored.live.version)


@router.post(
    "/recover",
    operation_id="recover_index",
    summary="Go back to the last intact commit if the live one is damaged",
    description="Checks the live commit (CURRENT, its commit point, every file, the counts). If it is "
    "intact nothing changes; if not, the newest commit point on disk that passes every check "
    "(commits first, then snapshots) becomes live as a new commit, and the response lists the "
    "documents that loses.",
    response_model=RecoverResponse,
    responses={
        **ERRORS,
        409: {
            "model": ErrorResponse,
            "description": "`no_intact_commit`: the live commit is damaged and no commit point on disk "
            "passes every check; nothing was changed.",
        },
    },
)
async def recover(engine: EngineDep, _: AdminAccess) -> RecoverResponse:
    try:
        recovered = await run_in_threadpool(engine.recover_and_report)
    except NoIntactCommitError as error:
        raise ApiError(409, "no_intact_commit", str(error)) from error
    loss = recovered.loss
    return RecoverResponse(
        recovered=recovered.damage is not None,
        index_version=recovered.version,
        source=recovered.source,
        damage=recovered.damage,
        lost_documents=loss.missing,
        returned_documents=loss.returned,
        unreadable_segments=[
            UnreadableSegment(segment=segment, documents=count) for segment, count in loss.unreadable
        ],
        live_commit_unknown=loss.unknown,
    )


@router.post(
    "/optimize",
    operation_id="optimize_index",
    summary="Merge the index into one segment",
    description="Force-merge every segment into one, dropping deleted documents; queries go on meanwhile.",
    response_model=OptimizeResponse,
    responses=WRITE_ERRORS,
)
async def optimize(engine: EngineDep, _: AdminAccess) -> OptimizeResponse:
    optimized = await run_in_threadpool(engine.optimize)
    return OptimizeResponse(
        index_version=optimized.version, segments=optimized.segments, merged=optimized.merged
    )
