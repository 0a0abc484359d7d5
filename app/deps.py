"""Request dependencies as named `Annotated` aliases; the app's long-lived state.

Every dependency is `async def`: none does I/O, and FastAPI runs a plain `def` dependency
in a worker thread (one thread hop per dependency per request).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader

from app.embedded_redis import EmbeddedRedis
from app.errors import Forbidden, InvalidRequest, Unauthorized
from app.inference.predictor import Predictor
from app.inference.serving import Serving
from app.metrics import Metrics
from app.schemas import (
    ID_HARD_LIMIT,
    TOP_K_DEFAULT,
    TOP_K_MAX,
    TOP_K_MIN,
    USER_ID_PATTERN,
    USER_ID_RULE,
    check_user_id,
)
from app.settings import API_KEY_HEADER, Settings
from app.store.window_store import WindowStore
from model.timestamps import parse_timestamp


@dataclass
class Services:
    """What lifespan builds once and every request uses."""

    settings: Settings
    metrics: Metrics
    store: WindowStore
    predictor: Predictor  # the primary model (the one the model card and reload are about)
    serving: Serving  # which model answers whom; the live record and the shadow
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


async def get_serving(services: ServicesDep) -> Serving:
    return services.serving


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[WindowStore, Depends(get_store)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ServingDep = Annotated[Serving, Depends(get_serving)]

# One OpenAPI security scheme per key, all sent in X-API-Key: `app.openapi` keeps, in each
# mode, the schemes whose check is on.
STOREFRONT_SCHEME, ADMIN_SCHEME, METRICS_SCHEME = "StorefrontKey", "AdminKey", "MetricsKey"


def key_scheme(scheme: str, description: str) -> APIKeyHeader:
    """The X-API-Key header, documented as the security scheme `scheme`."""
    return APIKeyHeader(name=API_KEY_HEADER, scheme_name=scheme, description=description,
                        auto_error=False)


StorefrontKeyHeader = Annotated[str | None, Security(key_scheme(
    STOREFRONT_SCHEME, "a storefront key (SEQCAST_API_KEYS) or the admin key"
))]
AdminKeyHeader = Annotated[str | None, Security(key_scheme(
    ADMIN_SCHEME, "the admin key (SEQCAST_ADMIN_KEY)"
))]


def _matches(given: str | None, secret: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


async def require_api_key(settings: SettingsDep, key: StorefrontKeyHeader) -> None:
    """The storefront's key (X-API-Key); open when no keys are configured in development."""
    if not settings.auth_enabled:
        return
    if any(_matches(key, k.get_secret_value()) for k in settings.api_keys):
        return
    if _matches(key, settings.admin_key.get_secret_value()):
        return
    raise Unauthorized(f"missing or unknown {API_KEY_HEADER}")


async def require_admin_key(settings: SettingsDep, key: AdminKeyHeader) -> None:
    """Admin routes always need the admin key in X-API-Key: a storefront key is known but
    not enough (403), any other key or none is not known (401)."""
    if _matches(key, settings.admin_key.get_secret_value()):
        return
    if any(_matches(key, k.get_secret_value()) for k in settings.api_keys):
        raise Forbidden(f"admin route: a storefront key does not open it; {API_KEY_HEADER} "
                        "must hold the admin key")
    raise Unauthorized(f"admin route: {API_KEY_HEADER} must hold the admin key")


ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)


def check_id(settings: Settings, field: str, value: str | None) -> None:
    """Enforce SEQCAST_MAX_ID_LENGTH (the schema's cap is only the hard limit)."""
    if value is not None and len(value) > settings.max_id_length:
        raise InvalidRequest(field, f"at most {settings.max_id_length} characters")


PathUserId = Annotated[
    str,
    Path(description=USER_ID_RULE, max_length=ID_HARD_LIMIT,
         json_schema_extra={"pattern": USER_ID_PATTERN}),
]


async def valid_user_id(user_id: PathUserId, settings: SettingsDep) -> str:
    """The user id of a path, by the rule every route applies (`app.schemas.check_user_id`)."""
    check_id(settings, "user_id", user_id)
    try:
        return check_user_id(user_id)
    except ValueError as exc:
        raise InvalidRequest("user_id", str(exc)) from None


UserIdDep = Annotated[str, Depends(valid_user_id)]


@dataclass(frozen=True)
class QueryFlags:
    """The query parameters of the API, read strictly: each at most once, `top_k` decimal
    digits only (1..100), each boolean exactly `true` or `false`. Other keys are ignored
    (`names` lists every key given)."""

    top_k: int = TOP_K_DEFAULT
    explain: bool = False
    predict: bool = False
    force: bool = False
    at: float | None = None  # unix seconds; None: the moment of the request
    names: frozenset[str] = frozenset()


_BOOL_PARAMS = ("explain", "predict", "force")
_BOOLS = {"true": True, "false": False}
_TOP_K = re.compile(r"0*([0-9]{1,3})")  # leading zeros allowed; int() of the rest is cheap
TOP_K_RULE = f"an integer from {TOP_K_MIN} to {TOP_K_MAX}, in decimal digits"
BOOL_RULE = "true or false (lowercase)"
AT_RULE = ("the moment the answer is about (default: now), a unix time in seconds or an ISO "
           "8601 date and time: the rule of an event's timestamp")


def read_at(value: str) -> float:
    """The `at` query parameter as unix seconds; InvalidRequest names it and its rule."""
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise InvalidRequest("query.at", f"{exc}; {AT_RULE}") from None


def read_query(query_string: bytes) -> QueryFlags:
    """`QueryFlags` from a raw query string; InvalidRequest names the parameter. The route
    dependency and the fast path (`app.fastpath`) both read the query with this."""
    seen: set[str] = set()
    top_k = TOP_K_DEFAULT
    at: float | None = None
    bools: dict[str, bool] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            raise InvalidRequest(f"query.{name}", "given more than once; give it once")
        seen.add(name)
        if name == "top_k":
            digits = _TOP_K.fullmatch(value)
            if digits is None or not TOP_K_MIN <= int(digits[1]) <= TOP_K_MAX:
                raise InvalidRequest("query.top_k", TOP_K_RULE)
            top_k = int(digits[1])
        elif name == "at":
            at = read_at(value)
        elif name in _BOOL_PARAMS:
            if value not in _BOOLS:
                raise InvalidRequest(f"query.{name}", BOOL_RULE)
            bools[name] = _BOOLS[value]
    return QueryFlags(top_k, bools.get("explain", False), bools.get("predict", False),
                      bools.get("force", False), at, frozenset(seen))


async def strict_query(request: Request) -> None:
    """Refuses the spellings FastAPI's own parsing would coerce (`top_k=true`, `explain=1`,
    a repeated key); the routes then take the values from their declared parameters."""
    read_query(request.scope.get("query_string", b""))


StrictQuery = Depends(strict_query)
