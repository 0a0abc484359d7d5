"""The hot route without the framework: `GET /v1/users/{user_id}/prediction`.

A storefront calls it on every page view, and FastAPI's routing, dependency solving and
request/response objects cost more CPU than Redis and the model together. This ASGI
middleware answers the plain form of that request itself, with the same checks and the
same answer as the route in `app.routes.users` (both call `prediction_json`):

- it takes only `GET /v1/users/<id>/prediction` with no query parameter but `top_k`,
  `explain` and `at` (the route ignores other keys);
- the API key, the user id and the query go through the very functions the route's
  dependencies use (`require_api_key`, `valid_user_id`, `read_query`), so both accept the
  same spellings and read the same values from them;
- anything else, including any request one of those checks refuses, goes to the full app,
  which answers it (with its error) as the route does.

Errors after the checks (Redis down, no model) are answered like the app's exception
handler does (`error_response`). The route stays registered: OpenAPI documents it, and it
serves whatever the fast path passes on.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.deps import QueryFlags, Services, read_query, require_api_key, valid_user_id
from app.errors import InvalidRequest, ServiceError
from app.responses import error_response
from app.routes.users import PREDICTION_PATH, prediction_json
from app.settings import API_KEY_HEADER

_PREFIX = "/v1/users/"
_SUFFIX = "/prediction"
_KEY_HEADER = API_KEY_HEADER.lower().encode()
_HEADERS = [(b"content-type", b"application/json")]
_PARAMETERS = frozenset({"top_k", "explain", "at"})


def plain_query(query_string: bytes) -> QueryFlags | None:
    """The query of a request the fast path answers, else None (the app answers it)."""
    try:
        flags = read_query(query_string)
    except InvalidRequest:
        return None
    return flags if flags.names <= _PARAMETERS else None


class PredictionFastPath:
    """ASGI middleware in front of the router; see the module docstring."""

    def __init__(self, app: ASGIApp, route: Any) -> None:
        self.app = app
        self.route = route  # the route object, so logs and metrics name its template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not path.startswith(_PREFIX)
            or not path.endswith(_SUFFIX)
        ):
            await self.app(scope, receive, send)
            return
        user_id = path[len(_PREFIX) : -len(_SUFFIX)]
        query = plain_query(scope.get("query_string", b""))
        services: Services | None = getattr(scope["app"].state, "services", None)
        if query is None or services is None:
            await self.app(scope, receive, send)
            return
        key = next((v for k, v in scope["headers"] if k == _KEY_HEADER), None)
        try:
            await require_api_key(services.settings, None if key is None else key.decode("latin-1"))
            await valid_user_id(user_id, services.settings)
        except ServiceError:
            await self.app(scope, receive, send)  # the app answers it, as the route does
            return
        scope["route"] = self.route
        try:
            body = await prediction_json(services, user_id, query.top_k, query.explain,
                                         query.at)
        except ServiceError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def find_prediction_route(routes: list[Any]) -> Any:
    return next(r for r in routes if getattr(r, "path", None) == PREDICTION_PATH)
