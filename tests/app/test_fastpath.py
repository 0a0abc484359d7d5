"""The fast path for GET prediction answers exactly as the FastAPI route does.

The route is reached with the same request carrying a query key the API ignores (`ref=a`:
the fast path passes any such request to the app), so each pair below is one question
answered once by `PredictionFastPath` and once by `app.routes.users`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.fastpath import plain_query

pytestmark = pytest.mark.slow

# (fast path query, the same question in a spelling only the route takes)
PAIRS = [
    ("", "ref=a"),
    ("top_k=3", "top_k=0003&ref=a"),
    ("top_k=5&explain=true", "ref=a&explain=%74rue&top_k=5"),
    ("explain=false", "explain=false&ref="),
]


def test_the_fast_path_takes_the_plain_forms_and_declines_the_others() -> None:
    for fast, routed in PAIRS:
        assert plain_query(fast.encode()) is not None
        assert plain_query(routed.encode()) is None
    assert plain_query(b"top_k=101") is None and plain_query(b"top_k=0") is None
    assert plain_query(b"top_k=1&top_k=2") is None and plain_query(b"debug=1") is None
    assert plain_query(b"explain=True") is None and plain_query(b"top_k=true") is None


@pytest.mark.parametrize("user", ["fp-known", "fp-cold-start"])
def test_fast_path_and_route_give_identical_json(
    client: TestClient, events: Callable[..., Any], user: str
) -> None:
    if user == "fp-known":
        assert client.post("/v1/events", json=events(user, 9)).status_code == 200
    for fast, routed in PAIRS:
        a = client.get(f"/v1/users/{user}/prediction?{fast}")
        b = client.get(f"/v1/users/{user}/prediction?{routed}")
        assert a.status_code == b.status_code == 200
        assert a.headers["content-type"] == b.headers["content-type"]
        assert a.json() == b.json()
        assert a.content == b.content
