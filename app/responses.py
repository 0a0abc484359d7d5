"""The JSON answer of a `ServiceError`, shared by the app's exception handlers and the fast
path of the hot route (`app.fastpath`), so both answer an error the same way.

Every error body has one shape, `ErrorOut`: `{"error": code, "message": ..., "fields": [...]}`
(`fields` only where a request names what is wrong).
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse

from app.errors import InvalidRequest, ServiceError

log = logging.getLogger(__name__)


def error_json(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message, **extra}, status_code=status, headers=headers
    )


def invalid_json(fields: list[dict[str, str]]) -> JSONResponse:
    """422 for what is wrong with a request, field by field (the first few in `message`)."""
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error_json(422, "validation_error", summary, fields=fields)


def error_response(exc: ServiceError) -> JSONResponse:
    """The answer to a domain error: its status and code, the field of an invalid request,
    Retry-After when retrying helps, WWW-Authenticate on 401. Internals the message names
    (hosts, ports, paths) go to the log, not to the client; an outage's (a 503 with
    Retry-After) is logged where it arises, once (the store's rate-limited error, the
    predictor's refused artifact), not once per request it turns away."""
    if isinstance(exc, InvalidRequest):
        return invalid_json([{"field": exc.field, "message": exc.detail}])
    retry_after = getattr(exc, "retry_after_seconds", None)
    if exc.public_message is not None and retry_after is None:
        log.warning("%s: %s", exc.code, exc.message)
    response = error_json(exc.status_code, exc.code, exc.client_message)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    challenge = getattr(exc, "challenge", None)
    if challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    return response
