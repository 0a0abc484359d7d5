"""/docs and /redoc from assets the service serves itself, and /openapi.json behind the
storefront's API key when SEQCAST_DOCS=key.

FastAPI's own pages load Swagger UI and ReDoc from a CDN: without internet they are blank.
These pages load them from DOCS_ASSETS, a copy of the `fastapi-offline` package's static
files (Swagger UI's bundle and stylesheet, ReDoc's standalone bundle, a favicon). The
assets are the same public code for every caller, so they need no key; with SEQCAST_DOCS=key
the pages and the schema do. The pages fetch /openapi.json from the browser, which sends no
key: a keyed schema is read by tools (curl, a client generator) or by a browser that adds
the X-API-Key header.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.deps import ApiKey

OPENAPI_URL = "/openapi.json"
DOCS_ASSETS = "/docs-assets"
FAVICON = f"{DOCS_ASSETS}/favicon.png"
_ASSETS_DIR = str(files("fastapi_offline") / "static")


def _under_root(request: Request) -> Callable[[str], str]:
    """Paths as the browser reaches them: behind a proxy's prefix (ASGI root_path) too."""
    root = request.scope.get("root_path", "")
    return lambda path: f"{root}{path}"


def install_docs(app: FastAPI, *, keyed: bool) -> None:
    """Serve /docs, /redoc and their assets on `app`; with keyed, /openapi.json too, and
    the pages and the schema only to a request with an API key."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=_ASSETS_DIR), name="docs-assets")
    router = APIRouter(dependencies=[ApiKey] if keyed else [], include_in_schema=False)
    if keyed:
        @router.get(OPENAPI_URL)
        async def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

    @router.get("/docs")
    async def swagger(request: Request) -> HTMLResponse:
        url = _under_root(request)
        return get_swagger_ui_html(
            openapi_url=url(OPENAPI_URL),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=url(f"{DOCS_ASSETS}/swagger-ui-bundle.js"),
            swagger_css_url=url(f"{DOCS_ASSETS}/swagger-ui.css"),
            swagger_favicon_url=url(FAVICON),
        )

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        url = _under_root(request)
        return get_redoc_html(openapi_url=url(OPENAPI_URL), title=f"{app.title} - ReDoc",
                              redoc_js_url=url(f"{DOCS_ASSETS}/redoc.standalone.js"),
                              redoc_favicon_url=url(FAVICON), with_google_fonts=False)

    app.include_router(router)
