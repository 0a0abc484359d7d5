"""Probes and metrics (no API key: scraped by the platform)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import MetricsDep, PredictorDep, StoreDep
from app.metrics import CONTENT_TYPE_LATEST
from app.schemas import ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: a model is loaded and Redis answers",
    responses={503: {"model": ReadyOut}},
)
async def readyz(store: StoreDep, predictor: PredictorDep, response: Response) -> ReadyOut:
    redis_ok = await store.ping()
    out = ReadyOut(ready=redis_ok and predictor.ready, model=predictor.ready, redis=redis_ok)
    if not out.ready:
        response.status_code = 503
    return out


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
