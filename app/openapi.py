"""The OpenAPI document as this service, with these settings, answers.

FastAPI's own document differs from the service in four ways, rewritten here once, the first
time it is asked for (so `/openapi.json`, `/docs` and `/redoc` all show the result):

- errors: FastAPI documents its `{"detail": [...]}` body for 422 and no body for the error
  codes a route lists by description only; every error this service sends is `ErrorOut`,
  `{"error", "message", "fields"}` (`app.responses`);
- security: FastAPI declares a key's scheme wherever its check is a dependency, whether or
  not the check is on in this mode. Here an operation requires a scheme (and documents 401)
  only where its check really refuses a request without the key: the storefront key when
  API keys are on (`Settings.auth_enabled`), the admin key always, the metrics key when
  SEQCAST_METRICS_KEY is set (the schemes of `app.deps`, all in X-API-Key);
- limits: the schemas carry the hard caps of `app.schemas`; the document states the
  configured ones (SEQCAST_MAX_ID_LENGTH, SEQCAST_MAX_BATCH_EVENTS);
- links: the user id an ingest answers leads to that user's prediction and erasure;
- examples: an answer for every route (`app.examples`), a value for every parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app import examples
from app.deps import ADMIN_SCHEME, METRICS_SCHEME, STOREFRONT_SCHEME
from app.routes.users import PREDICTION_PATH
from app.schemas import EVENTS_HARD_LIMIT, ID_HARD_LIMIT, ErrorOut
from app.settings import Settings

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
# Every /v1 route may answer these; (code, description).
V1_ERRORS = (
    (413, "body over SEQCAST_MAX_BODY_BYTES"),
    (503, "window store unavailable or no model loaded; retry after Retry-After seconds"),
)
UNAUTHORIZED = "missing or unknown X-API-Key"
FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")
USER_PATH = "/v1/users/{user_id}"
# (path, method) -> {link name: (target path, target method, where the user id is)}
LINKS = {
    ("/v1/events", "post"): {
        "UserPrediction": (PREDICTION_PATH, "get", "$response.body#/users/0/user_id"),
        "EraseUser": (USER_PATH, "delete", "$response.body#/users/0/user_id"),
    },
    (PREDICTION_PATH, "get"): {"EraseUser": (USER_PATH, "delete", "$response.body#/user_id")},
    (USER_PATH, "delete"): {
        "UserPrediction": (PREDICTION_PATH, "get", "$response.body#/user_id"),
    },
}


# Each security scheme of `app.deps` and whether its check refuses a request without a key.
SCHEME_ON: dict[str, Callable[[Settings], bool]] = {
    STOREFRONT_SCHEME: lambda settings: settings.auth_enabled,
    ADMIN_SCHEME: lambda settings: True,
    METRICS_SCHEME: lambda settings: settings.metrics_key is not None,
}


def _with_security(schema: dict[str, Any], settings: Settings) -> None:
    """Each operation requires the schemes whose check is on (401 without), or none."""
    on = {name for name, check in SCHEME_ON.items() if check(settings)}
    for operations in schema["paths"].values():
        for operation in operations.values():
            required = [r for r in operation.pop("security", []) if set(r) <= on]
            if required:
                operation["security"] = required
                operation["responses"].setdefault("401", {"description": UNAUTHORIZED})
    schemes = schema["components"].pop("securitySchemes", {})
    used = {name for ops in schema["paths"].values() for op in ops.values()
            for r in op.get("security", []) for name in r}
    if used:
        schema["components"]["securitySchemes"] = {n: schemes[n] for n in sorted(used)}


def _with_error_bodies(schema: dict[str, Any]) -> None:
    """The /v1 routes' common errors listed, `ErrorOut` as the body of each error response
    that has none or FastAPI's validation model (a route's own error model, such as /readyz's
    ReadyOut, stays); FastAPI's validation-error models removed."""
    components = schema["components"].setdefault("schemas", {})
    models = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(models.pop("$defs", {}))
    components["ErrorOut"] = models
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path.startswith("/v1/"):
                for code, description in V1_ERRORS:
                    responses.setdefault(str(code), {"description": description})
            if path.startswith("/v1/admin/"):
                responses.setdefault("403", {"description": "a storefront key, not the admin key"})
            for code, response in responses.items():
                if code == "422":  # FastAPI's {"detail"} model: the service never sends it
                    response["description"] = "a field breaks its rule (named in `fields`)"
                    response.pop("content", None)
                if int(code) >= 400 and "content" not in response:
                    response["content"] = {"application/json": {"schema": dict(ERROR_REF)}}
    for name in FASTAPI_ONLY:
        components.pop(name, None)


def _with_limits(node: Any, settings: Settings) -> None:
    """The configured limits in place of the schemas' hard caps, everywhere in `node`."""
    if isinstance(node, dict):
        if node.get("maxLength") == ID_HARD_LIMIT:
            node["maxLength"] = settings.max_id_length
        if node.get("maxItems") == EVENTS_HARD_LIMIT:
            node["maxItems"] = settings.max_batch_events
        for value in node.values():
            _with_limits(value, settings)
    elif isinstance(node, list):
        for value in node:
            _with_limits(value, settings)


def _with_links(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for (path, method), links in LINKS.items():
        ok = paths[path][method]["responses"]["200"]
        ok["links"] = {
            name: {"operationId": paths[target][target_method]["operationId"],
                   "parameters": {"user_id": user_id}}
            for name, (target, target_method, user_id) in links.items()
        }


def _with_examples(schema: dict[str, Any]) -> None:
    """An example answer on every operation, an example value on every parameter."""
    for (path, method), answer in examples.ANSWERS.items():
        ok = schema["paths"][path][method]["responses"]["200"]
        ok["content"]["application/json"]["example"] = answer
    metrics = schema["paths"].get("/metrics")  # absent when the metrics have their own port
    if metrics is not None:
        metrics["get"]["responses"]["200"]["content"] = {
            "text/plain": {"schema": {"type": "string"}, "example": examples.METRICS}
        }
    schema["components"]["schemas"]["ErrorOut"]["examples"] = [examples.ERROR]
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in examples.PARAMETERS:
                    parameter["example"] = examples.PARAMETERS[parameter["name"]]


def rewritten(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """FastAPI's `schema` as the service answers with `settings` (module docstring)."""
    schema.setdefault("components", {})
    _with_security(schema, settings)
    _with_error_bodies(schema)
    _with_limits(schema, settings)
    _with_links(schema)
    _with_examples(schema)
    return schema


def install(app: FastAPI, settings: Settings) -> None:
    """Make `app.openapi()` return the rewritten document (built once, then cached)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewritten(build(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
