"""The FastAPI application: `create_app()` builds it; `lifespan` opens what is expensive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import openapi
from app.deps import Services
from app.embedded_redis import EmbeddedRedis
from app.errors import ServiceError
from app.fastpath import PredictionFastPath, find_prediction_route
from app.inference.predictor import Predictor
from app.inference.serving import Serving
from app.logs import configure_logging
from app.metrics import Metrics, multiprocess_dir, serve_metrics
from app.middleware import AccessMiddleware, BodyLimitMiddleware
from app.responses import error_json, error_response, invalid_json
from app.routes import events, health, live, modelcard, predict, ui, users
from app.routes.apidocs import OPENAPI_URL, install_docs
from app.settings import Settings, load_settings
from app.store.redis_store import RedisWindowStore

log = logging.getLogger(__name__)

# The discriminator tags of the POST /v1/events body are not part of any field's path.
_BODY_TAGS = {"single", "batch"}
_UNREADABLE_BODY = "the body cannot be read: it must be JSON, encoded in UTF-8"


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
        if where == "body" and parts and parts[0] in _BODY_TAGS:
            parts = parts[1:]
        if where != "body":
            parts = [where, *parts]
    return ".".join(parts) or "body"


def _validation_fields(exc: RequestValidationError) -> list[dict[str, str]]:
    """Each error's field and message; malformed JSON names the body and where it breaks."""
    fields = []
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            position = e["loc"][-1]
            reason = e.get("ctx", {}).get("error", "invalid JSON")
            fields.append({"field": "body",
                           "message": f"malformed JSON at character {position}: {reason}"})
        else:
            fields.append({"field": _field_path(tuple(e["loc"])),
                           "message": str(e["msg"]).removeprefix("Value error, ")})
    return fields


def _install_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Every error answers `ErrorOut`, `{"error", "message", "fields"}`: the domain errors,
    validation, the framework's own HTTP errors (404, 405, a body it cannot read) and any
    unexpected exception."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith("/v1/events"):
            metrics.events_rejected.labels("validation").inc()
        return invalid_json(_validation_fields(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode as JSON
            if request.url.path.startswith("/v1/events"):
                metrics.events_rejected.labels("validation").inc()
            return invalid_json([{"field": "body", "message": _UNREADABLE_BODY}])
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        response = error_json(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this answer (the server logs the traceback) and the
        # server then drops the connection: the client is told so.
        return error_json(500, "internal_error", "internal error; the service log has it",
                          headers={"Connection": "close"})


def _store(settings: Settings, metrics: Metrics, url: str) -> RedisWindowStore:
    return RedisWindowStore(
        url,
        prefix=settings.redis_key_prefix,
        ttl_seconds=settings.window_ttl_seconds,
        seen_capacity=settings.seen_ids_per_user,
        metrics=metrics,
        timeout_seconds=settings.redis_timeout_seconds,
        erasure_rewrite_seconds=settings.erasure_rewrite_seconds,
    )


def _predictor(settings: Settings, metrics: Metrics, artifact_dir: Path, *,
               candidate: bool = False) -> Predictor:
    return Predictor(
        artifact_dir,
        metrics=metrics,
        candidate=candidate,
        batch_wait_ms=settings.batch_wait_ms,
        max_batch=settings.max_model_batch,
        model_threads=settings.model_threads,
        inline_rows=settings.inline_rows,
        int8=settings.int8,
    )


def _lifespan(
    settings: Settings, metrics: Metrics
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """What the service opens at start-up and closes at shutdown: the window store (and the
    embedded redis-server when no URL is set), the predictor and its reload watcher, and the
    metrics port of a single process (`app.serve` serves it over several workers)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        embedded: EmbeddedRedis | None = None
        tasks: list[asyncio.Task[None]] = []
        if settings.redis_url is None:
            embedded = await asyncio.to_thread(EmbeddedRedis.started, Path(settings.data_dir))
            url = embedded.url
        else:
            url = settings.redis_url.get_secret_value()
        store = _store(settings, metrics, url)
        predictor = _predictor(settings, metrics, settings.artifact_dir)
        candidate = (None if settings.candidate_artifact is None else
                     _predictor(settings, metrics, settings.candidate_artifact, candidate=True))
        predictors = [predictor] if candidate is None else [predictor, candidate]
        for p in predictors:
            await p.start()
        if not await store.ping():
            log.error("the window store at %s does not answer; serving 503 until it does",
                      store.display_url)
        if settings.reload_poll_seconds > 0:
            tasks += [asyncio.create_task(p.watch(settings.reload_poll_seconds),
                                          name=f"seqcast-reload-{i}")
                      for i, p in enumerate(predictors)]
        serving = Serving(
            predictor, candidate, store=store, metrics=metrics, mode=settings.candidate_mode,
            share=settings.candidate_share, sample_share=settings.live_sample_share,
            pending_per_user=settings.live_pending_per_user,
            grace_seconds=settings.live_grace_seconds,
        )
        app.state.services = Services(settings, metrics, store, predictor, serving, embedded)
        stop_metrics = None
        if settings.metrics_port is not None and multiprocess_dir() is None:
            stop_metrics = serve_metrics(metrics.registry, settings.metrics_host,
                                         settings.metrics_port)
        try:
            yield
        finally:
            if stop_metrics is not None:
                stop_metrics()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await serving.close()
            for p in predictors:
                await p.close()
            await store.close()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    return lifespan


def create_app(
    settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> FastAPI:
    """The service. Nothing is opened here: the model, Redis (embedded or not) and the
    background tasks start in `lifespan` and stop with it."""
    settings = settings or load_settings()
    metrics = Metrics(registry)
    docs_open = settings.docs_access == "open"
    app = FastAPI(
        title="seqcast",
        version="1",
        summary="Real-time next-behavior prediction for e-commerce shoppers.",
        lifespan=_lifespan(settings, metrics),
        openapi_url=OPENAPI_URL if docs_open else None,
        docs_url=None,  # app.routes.apidocs serves the pages with local assets
        redoc_url=None,
    )
    for router in (events.router, users.router, predict.router, modelcard.router,
                   live.router, modelcard.admin, health.router, ui.router, ui.report):
        app.include_router(router)
    if settings.metrics_port is None:
        app.include_router(health.metrics_router)
    if settings.docs_access != "off":
        install_docs(app, keyed=settings.docs_access == "key")
    _install_handlers(app, metrics)
    openapi.install(app, settings)
    app.add_middleware(PredictionFastPath, route=find_prediction_route(users.router.routes))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessMiddleware, metrics=metrics)
    return app
