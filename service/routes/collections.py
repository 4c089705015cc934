"""`GET /collections`, and every collection's routes under `/collections/{collection}`.

The routers of the unprefixed routes (search, the LLM formats, documents, admin, health, jobs) are
included again under the prefix, so a named collection answers exactly as `default` does; their
dependencies pick the collection's engine from the path (service/deps.py) and check the key's
scope first (service/auth.py). Their OpenAPI operation ids get the suffix `_in_collection`, so
every id stays unique. Out of scope: creating a collection by itself (its first document write
does) and deleting or renaming one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from index.errors import IndexError_
from service.auth import COLLECTION_DEPENDENCIES, ReadableCollections
from service.deps import CollectionsDep
from service.jobs import routes as jobs
from service.routes import admin, documents, health, llm, search
from service.schemas import (
    CollectionListResponse,
    CollectionOut,
    ErrorResponse,
    UnavailableCollectionOut,
)

PREFIX = "/collections/{collection}"
OPERATION_SUFFIX = "_in_collection"
COLLECTION_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorResponse,
        "description": "`forbidden_collection`: the key may not use this collection (or, on writes, "
        "is not an admin key).",
    },
    404: {
        "model": ErrorResponse,
        "description": "`collection_not_found`: the collection has no index yet (its first document "
        "write creates it), or no such document or snapshot.",
    },
}

router = APIRouter(tags=["collections"])


@router.get(
    "/collections",
    operation_id="list_collections",
    summary="List collections",
    description="Every collection the key may use, `default` first, with its index version and "
    "counts. A collection is created by its first document write "
    "(`POST /collections/{collection}/documents`).",
    response_model=CollectionListResponse,
)
def list_collections(collections: CollectionsDep, grant: ReadableCollections) -> CollectionListResponse:
    listed, unavailable = [], []
    for name in collections.names():
        if not grant.allows(name):
            continue
        try:
            health = collections.get(name).health()
        except IndexError_ as error:  # one damaged or missing index does not hide the others
            unavailable.append(UnavailableCollectionOut(name=name, problem=str(error)))
            continue
        listed.append(
            CollectionOut(
                name=name, index_version=health.version, documents=health.documents, chunks=health.chunks
            )
        )
    return CollectionListResponse(collections=listed, unavailable=unavailable)


def install(app: FastAPI) -> None:
    """Add `GET /collections` and the collection-scoped copies of the routes to `app`."""
    app.include_router(router)  # its key check is `ReadableCollections`: any collection will do
    for source in (search.router, llm.router, documents.router, admin.router, health.router, jobs.router):
        app.include_router(
            _in_collection(source),
            prefix=PREFIX,
            dependencies=COLLECTION_DEPENDENCIES,
            responses=COLLECTION_ERRORS,
        )


def _in_collection(source: APIRouter) -> APIRouter:
    """A copy of `source`'s routes whose operation ids end in `_in_collection`."""
    copy = APIRouter()
    for route in source.routes:
        if not isinstance(route, APIRoute):  # pragma: no cover - the routers hold API routes only
            continue
        copy.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            name=route.name,
            operation_id=f"{route.operation_id}{OPERATION_SUFFIX}" if route.operation_id else None,
            summary=f"{route.summary} (in a collection)" if route.summary else None,
            description=route.description,
            response_model=route.response_model,
            status_code=route.status_code,
            responses=route.responses,
            tags=route.tags,
            dependencies=route.dependencies,
            include_in_schema=route.include_in_schema,
            openapi_extra=route.openapi_extra,
        )
    return copy
