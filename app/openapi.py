"""The OpenAPI document as the service answers: every error response is `ErrorOut`.

FastAPI documents its own `{"detail": [...]}` body for 422 and no body for the error codes a
route lists by description only, while every error this service sends is
`{"error", "message", "fields"}` (`app.responses`). The schema FastAPI builds is rewritten
once, the first time it is asked for, so `/openapi.json`, `/docs` and `/redoc` all show it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.schemas import ErrorOut

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
# Every /v1 route may answer these; (code, description).
V1_ERRORS = (
    (401, "missing or unknown X-API-Key (required in production or when SEQCAST_API_KEYS is "
          "set)"),
    (413, "body over SEQCAST_MAX_BODY_BYTES"),
    (503, "window store unavailable or no model loaded; retry after Retry-After seconds"),
)
FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


def with_error_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with the /v1 routes' common errors listed and `ErrorOut` as the body of each
    error response that has none or FastAPI's validation model (a route's own error model,
    such as /readyz's ReadyOut, stays); FastAPI's validation-error models removed."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(models.pop("$defs", {}))
    components["ErrorOut"] = models
    for path, operations in schema.get("paths", {}).items():
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
    return schema


def install(app: FastAPI) -> None:
    """Make `app.openapi()` return the rewritten document (built once, then cached)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_bodies(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
