"""Probes (no API key: called by the platform) and metrics.

/metrics is open unless SEQCAST_METRICS_KEY is set; then it takes that key in X-API-Key or
as a bearer token (what Prometheus' `authorization` scrape setting sends). `app.main`
leaves it out when the metrics have a port of their own (SEQCAST_METRICS_PORT).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, Security

from app.deps import (
    METRICS_SCHEME,
    MetricsDep,
    PredictorDep,
    SettingsDep,
    StoreDep,
    key_scheme,
)
from app.errors import Unauthorized
from app.metrics import CONTENT_TYPE_LATEST
from app.schemas import ReadyOut
from app.settings import API_KEY_HEADER

router = APIRouter(tags=["health"])
MetricsKeyHeader = Annotated[str | None, Security(key_scheme(
    METRICS_SCHEME, "the metrics key (SEQCAST_METRICS_KEY); also as `Authorization: Bearer`"
))]


async def require_metrics_key(
    settings: SettingsDep, key: MetricsKeyHeader,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    if settings.metrics_key is None:
        return
    secret = settings.metrics_key.get_secret_value().encode()
    scheme, _, token = (authorization or "").partition(" ")
    given = [key, token if scheme.lower() == "bearer" else None]
    if any(g is not None and hmac.compare_digest(g.encode(), secret) for g in given):
        return
    raise Unauthorized(f"/metrics: {API_KEY_HEADER} or a bearer token must hold the metrics key")


metrics_router = APIRouter(tags=["health"], dependencies=[Depends(require_metrics_key)])


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


@metrics_router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
