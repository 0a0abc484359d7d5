"""Domain errors. Each maps to one HTTP answer, once, in `app.main`'s exception handlers."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors the API turns into a JSON answer."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreUnavailable(ServiceError):
    """Redis cannot be reached (or answers with an error); retry later."""

    status_code = 503
    code = "store_unavailable"
    retry_after_seconds = 1


class ModelNotReady(ServiceError):
    """No model is loaded (yet): the artifact is missing or was refused."""

    status_code = 503
    code = "model_not_ready"
    retry_after_seconds = 5


class ArtifactRejected(ServiceError):
    """A new artifact failed its checks; the previous model keeps serving."""

    status_code = 409
    code = "artifact_rejected"


class InvalidRequest(ServiceError):
    """A request that passed the schema but breaks a configured limit; names the field."""

    status_code = 422
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"
