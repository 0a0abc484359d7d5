"""Domain errors. Each maps to one HTTP answer, once, in `app.main`'s exception handlers.

`message` is the whole story, for the log. What a client reads is `public_message`: the
same text, except where the message can name hosts, ports or filesystem paths (the store's
URL, the artifact directory), which only the log gets.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors the API turns into a JSON answer."""

    status_code = 500
    code = "internal_error"
    public_message: str | None = None  # set where `message` may name internals

    def __init__(self, message: str, *, public_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if public_message is not None:
            self.public_message = public_message

    @property
    def client_message(self) -> str:
        return self.message if self.public_message is None else self.public_message


class StoreUnavailable(ServiceError):
    """Redis cannot be reached (or answers with an error); retry later."""

    status_code = 503
    code = "store_unavailable"
    retry_after_seconds = 1
    public_message = "the window store is unavailable; retry after Retry-After seconds"


class ModelNotReady(ServiceError):
    """No model is loaded (yet): the artifact is missing or was refused."""

    status_code = 503
    code = "model_not_ready"
    retry_after_seconds = 5
    public_message = "no model is loaded; retry after Retry-After seconds"


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
    """No key, or a key the service does not know."""

    status_code = 401
    code = "unauthorized"
    challenge = "ApiKey"  # the WWW-Authenticate scheme: the key goes in X-API-Key


class Forbidden(ServiceError):
    """A known key that does not open this route (the storefront's key on an admin route)."""

    status_code = 403
    code = "forbidden"
