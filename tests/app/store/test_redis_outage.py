"""The service while its Redis is down (503 with Retry-After) and after it is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.embedded_redis import EmbeddedRedis
from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.slow

LiveServerFactory = Callable[..., Any]

def test_redis_outage_answers_503_then_recovers_by_itself(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: LiveServerFactory, tmp_path: Path,
    events: Callable[..., Any], wait_until: Callable[..., Any],
) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis", appendonly=False)
    redis_server.start()
    app = create_app(
        make_settings(redis_url=redis_server.url, redis_timeout_seconds=0.3), registry
    )
    try:
        with live_server(app) as server, httpx.Client(base_url=server.url) as http:
            assert http.post("/v1/events", json=events("o", 3)).status_code == 200
            redis_server.kill()
            down = http.get("/v1/users/o/prediction")
            assert down.status_code == 503
            assert down.headers["Retry-After"] == "1"
            assert down.json()["error"] == "store_unavailable"
            assert http.post("/v1/events", json=events("o", 4)).status_code == 503
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["redis"] is False
            assert http.get("/healthz").status_code == 200
            assert "seqcast_redis_up 0.0" in http.get("/metrics").text

            redis_server.start()
            wait_until(lambda: http.get("/readyz").status_code == 200)
            # A Redis without persistence came back empty: the user starts over.
            back = http.get("/v1/users/o/prediction")
            assert back.status_code == 200 and back.json()["cold_start"] is True
            assert http.post("/v1/events", json=events("o", 4)).json()["accepted"] == 4
            assert "seqcast_redis_up 1.0" in http.get("/metrics").text
    finally:
        redis_server.stop()
