"""The embedded redis-server: started by the app, restarted by its supervisor, persistent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.slow


def _aof_settled(persistence: dict[str, Any]) -> bool:
    """No write waiting in the server's AOF buffer or for fsync, and no rewrite running
    (whose end swaps the file): what everysec has acknowledged is then on disk."""
    return (persistence.get("aof_rewrite_in_progress", 0) == 0
            and persistence.get("aof_buffer_length", 0) == 0
            and persistence.get("aof_pending_bio_fsync", 0) == 0)


def test_embedded_redis_is_started_supervised_and_persistent(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, tmp_path: Path,
    events: Callable[..., Any], wait_until: Callable[..., Any],
) -> None:
    from fastapi.testclient import TestClient

    data = tmp_path / "data"
    settings = make_settings(redis_url=None, data_dir=data)
    with TestClient(create_app(settings, registry)) as c:
        assert c.post("/v1/events", json=events("e", 4)).status_code == 200
        embedded = c.app.state.services.embedded_redis  # type: ignore[attr-defined]
        pid = embedded.process.pid
        # appendfsync everysec may hold a write back while a background fsync runs (up to
        # 2 s), and SIGKILL loses what it held: crash only once the events are in the file
        # the restarted server loads (not in a rewrite's temp file, which it ignores).
        wait_until(lambda: b"ZADD" in b"".join(
            f.read_bytes() for f in data.rglob("*.aof") if not f.name.startswith("temp-")
        ))
        info = redis.Redis.from_url(embedded.url).info
        wait_until(lambda: _aof_settled(info("persistence")))
        embedded.kill()
        wait_until(lambda: c.get("/readyz").status_code == 200 and embedded.process.pid != pid)
        assert c.get("/v1/users/e/prediction").json()["window_length"] == 4
    assert embedded.process is None
    assert any(data.rglob("*.aof")), "append-only persistence in the data directory"
    with TestClient(create_app(settings, CollectorRegistry())) as c:
        assert c.get("/v1/users/e/prediction").json()["window_length"] == 4
