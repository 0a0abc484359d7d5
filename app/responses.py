"""The JSON answer of a `ServiceError`, shared by the app's exception handler and the fast
path of the hot route (`app.fastpath`), so both answer an error the same way."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.errors import InvalidRequest, ServiceError


def error_json(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def error_response(exc: ServiceError) -> JSONResponse:
    """The answer to a domain error: its status and code, the field of an invalid request,
    Retry-After when retrying helps, WWW-Authenticate on 401."""
    if isinstance(exc, InvalidRequest):
        response = error_json(
            422, exc.code, exc.message, fields=[{"field": exc.field, "message": exc.detail}]
        )
    else:
        response = error_json(exc.status_code, exc.code, exc.message)
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if exc.status_code == 401:
        response.headers["WWW-Authenticate"] = "ApiKey"
    return response
