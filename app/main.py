"""The FastAPI application: `create_app()` builds it; `lifespan` opens what is expensive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from app.deps import Services
from app.embedded_redis import EmbeddedRedis
from app.errors import ServiceError
from app.fastpath import PredictionFastPath, find_prediction_route
from app.inference.predictor import Predictor
from app.logs import configure_logging
from app.metrics import Metrics
from app.middleware import AccessMiddleware, BodyLimitMiddleware
from app.responses import error_json, error_response
from app.routes import events, health, modelcard, predict, users
from app.settings import Settings
from app.store.redis_store import RedisWindowStore

log = logging.getLogger(__name__)

# The discriminator tags of the POST /v1/events body are not part of any field's path.
_BODY_TAGS = {"single", "batch"}


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
        if where == "body" and parts and parts[0] in _BODY_TAGS:
            parts = parts[1:]
        if where != "body":
            parts = [where, *parts]
    return ".".join(parts) or "body"


def _install_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "field": _field_path(tuple(e["loc"])),
                "message": str(e["msg"]).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        if request.url.path.startswith("/v1/events"):
            metrics.events_rejected.labels("validation").inc()
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_json(422, "validation_error", summary, fields=fields)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)


def _lifespan(
    settings: Settings, metrics: Metrics
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """What the service opens at start-up and closes at shutdown: the window store (and the
    embedded redis-server when no URL is set), the predictor and its reload watcher."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        embedded: EmbeddedRedis | None = None
        tasks: list[asyncio.Task[None]] = []
        if settings.redis_url is None:
            embedded = EmbeddedRedis(Path(settings.data_dir))
            await asyncio.to_thread(embedded.start)
            embedded.supervise()
            url = embedded.url
        else:
            url = settings.redis_url.get_secret_value()
        store = RedisWindowStore(
            url,
            prefix=settings.redis_key_prefix,
            ttl_seconds=settings.window_ttl_seconds,
            seen_capacity=settings.seen_ids_per_user,
            metrics=metrics,
            timeout_seconds=settings.redis_timeout_seconds,
            erasure_rewrite_seconds=settings.erasure_rewrite_seconds,
        )
        predictor = Predictor(
            settings.artifact_dir,
            metrics=metrics,
            batch_wait_ms=settings.batch_wait_ms,
            max_batch=settings.max_model_batch,
            model_threads=settings.model_threads,
            inline_rows=settings.inline_rows,
        )
        await predictor.start()
        if not await store.ping():
            log.error("the window store at %s does not answer; serving 503 until it does",
                      store.display_url)
        if settings.reload_poll_seconds > 0:
            tasks.append(asyncio.create_task(
                predictor.watch(settings.reload_poll_seconds), name="seqcast-reload"
            ))
        app.state.services = Services(settings, metrics, store, predictor, embedded)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await predictor.close()
            await store.close()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    return lifespan


def create_app(
    settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> FastAPI:
    """The service. Nothing is opened here: the model, Redis (embedded or not) and the
    background tasks start in `lifespan` and stop with it."""
    settings = settings or Settings()
    metrics = Metrics(registry)
    app = FastAPI(
        title="seqcast",
        version="1",
        summary="Real-time next-behavior prediction for e-commerce shoppers.",
        lifespan=_lifespan(settings, metrics),
    )
    for router in (events.router, users.router, predict.router, modelcard.router,
                   modelcard.admin, health.router):
        app.include_router(router)
    _install_handlers(app, metrics)
    app.add_middleware(PredictionFastPath, route=find_prediction_route(users.router.routes))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessMiddleware, metrics=metrics)
    return app
