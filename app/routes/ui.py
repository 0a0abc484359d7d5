"""The console at /ui: a page, its script and its style, served from `app/static/ui/`, and
the training report's plots of the serving artifact, which the page shows with the model
card. The page itself calls the public API (prediction, model card) with the key it asks
for; the plots take that key too."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from app.deps import ApiKey, PredictorDep
from model.artifact import REPORT_DIR

STATIC = Path(__file__).resolve().parents[1] / "static" / "ui"
# The console's files and their content types: nothing else under /ui is a file.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# The page runs only its own script and style, talks only to this service, shows the plots
# it fetched as blobs, and may not be framed.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

router = APIRouter(prefix="/ui", include_in_schema=False)
report = APIRouter(prefix="/ui/report", include_in_schema=False, dependencies=[ApiKey])


def _asset(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type=ASSETS[name],
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP})


@router.get("")
async def console() -> FileResponse:
    return _asset("index.html")


@router.get("/assets/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no console asset {name!r}; the assets are "
                                 f"{', '.join(sorted(ASSETS))}")
    return _asset(name)


def _plots(predictor: PredictorDep) -> dict[str, Path]:
    folder = predictor.require().artifact.path / REPORT_DIR
    return {p.name: p for p in sorted(folder.glob("*.png"))}


@report.get("")
async def plots(predictor: PredictorDep) -> dict[str, list[str]]:
    """The names of the serving artifact's report plots (none when it has no report)."""
    return {"plots": list(_plots(predictor))}


@report.get("/{name}")
async def plot(name: str, predictor: PredictorDep) -> FileResponse:
    found = _plots(predictor)
    if name not in found:
        allowed = ", ".join(found) or "none: the artifact has no report plots"
        raise HTTPException(404, f"no report plot {name!r}; the plots are {allowed}")
    return FileResponse(found[name], media_type="image/png")
