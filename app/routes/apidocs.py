"""/openapi.json, /docs and /redoc behind the storefront's API key (SEQCAST_DOCS=key).

FastAPI serves the three without a key, or not at all; this router serves them with the
same check as the storefront routes. The Swagger and ReDoc pages fetch /openapi.json from
the browser, which sends no key: a keyed schema is read by tools (curl, a client
generator) or by a browser that adds the X-API-Key header.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from app.deps import ApiKey

OPENAPI_URL = "/openapi.json"


def keyed_docs_router(app: FastAPI) -> APIRouter:
    router = APIRouter(dependencies=[ApiKey], include_in_schema=False)

    @router.get(OPENAPI_URL)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} - Swagger UI")

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{app.title} - ReDoc")

    return router
