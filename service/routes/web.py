"""The web page: `GET /` serves a single page (service/static) that calls the JSON API.

The page asks `GET /search` and shows the passages; `/?q=...` opens with a question asked (with
`GET /search`'s filter parameters `source`, `published_after`, `published_before` when given; the
publications to choose from come from `GET /documents`) and `/?doc=ID&start=S&end=E` shows a
whole article with text[S:E] highlighted. Everything it loads
comes from this service (no CDN). The page is not part of the API, so not in the OpenAPI spec.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
def index_page() -> FileResponse:
    # no-cache: the page is tiny, and a stale copy after an upgrade would call the API wrongly
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
