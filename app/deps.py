"""Request dependencies as named `Annotated` aliases; the app's long-lived state.

Every dependency is `async def`: none does I/O, and FastAPI runs a plain `def` dependency
in a worker thread (one thread hop per dependency per request).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from app.embedded_redis import EmbeddedRedis
from app.errors import InvalidRequest, Unauthorized
from app.inference.predictor import Predictor
from app.metrics import Metrics
from app.settings import API_KEY_HEADER, Settings
from app.store.window_store import WindowStore


@dataclass
class Services:
    """What lifespan builds once and every request uses."""

    settings: Settings
    metrics: Metrics
    store: WindowStore
    predictor: Predictor
    embedded_redis: EmbeddedRedis | None = None


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_store(services: ServicesDep) -> WindowStore:
    return services.store


async def get_predictor(services: ServicesDep) -> Predictor:
    return services.predictor


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[WindowStore, Depends(get_store)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
ApiKeyHeader = Annotated[str | None, Security(_api_key_header)]


def _matches(given: str | None, secret: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


async def require_api_key(settings: SettingsDep, key: ApiKeyHeader) -> None:
    """The storefront's key (X-API-Key); open when no keys are configured in development."""
    if not settings.auth_enabled:
        return
    if any(_matches(key, k.get_secret_value()) for k in settings.api_keys):
        return
    if _matches(key, settings.admin_key.get_secret_value()):
        return
    raise Unauthorized(f"missing or unknown {API_KEY_HEADER}")


async def require_admin_key(settings: SettingsDep, key: ApiKeyHeader) -> None:
    """Admin routes always need the admin key in X-API-Key."""
    if not _matches(key, settings.admin_key.get_secret_value()):
        raise Unauthorized(f"admin route: {API_KEY_HEADER} must hold the admin key")


ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)


def check_id(settings: Settings, field: str, value: str | None) -> None:
    """Enforce SEQCAST_MAX_ID_LENGTH (the schema's cap is only the hard limit)."""
    if value is not None and len(value) > settings.max_id_length:
        raise InvalidRequest(field, f"at most {settings.max_id_length} characters")


async def valid_user_id(user_id: str, settings: SettingsDep) -> str:
    check_id(settings, "user_id", user_id)
    if not user_id or any(ord(c) < 32 or ord(c) == 127 for c in user_id):
        raise InvalidRequest("user_id", "a non-empty id without control characters")
    return user_id


UserIdDep = Annotated[str, Depends(valid_user_id)]
