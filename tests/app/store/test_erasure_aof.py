"""The erasure guarantee on a persisting Redis: after DELETE the user's id leaves the
append-only file within the rewrite interval, rewrites are rate-limited, and what was not
erased survives a restart from the rewritten file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.embedded_redis import EmbeddedRedis
from app.main import create_app
from app.metrics import Metrics
from app.settings import Settings
from app.store.redis_store import RedisWindowStore
from app.store.window_store import StoredEvent
from model.features import Event

pytestmark = pytest.mark.slow


def persisted(data_dir: Path, text: str) -> bool:
    """Whether `text` is in any file Redis persists into `data_dir` (appendonlydir/ with
    Redis 7, appendonly.aof before); its log holds no data."""
    return any(text.encode() in f.read_bytes() for f in data_dir.rglob("*")
               if f.is_file() and f.name != "redis.log")


async def settles(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check()` holds, polling without blocking the store's event loop."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def events(user: str, n: int) -> list[StoredEvent]:
    return [StoredEvent(f"{user}-{i}", Event(f"sku-{user}", "c", 0, float(i))) for i in range(n)]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_erased_ids_leave_the_aof_rate_limited_and_the_rest_survives_a_restart(
    tmp_path: Path, anyio_backend: str,
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")  # appendonly yes, as the embedded default
    server.start()
    interval = 3.0
    store = RedisWindowStore(
        server.url, prefix="seqcast", ttl_seconds=3600, seen_capacity=100,
        metrics=Metrics(CollectorRegistry()), erasure_rewrite_seconds=interval,
    )
    try:
        await store.append({u: events(u, 5) for u in ("ann", "bob", "kept")}, window_len=10)
        # appendfsync everysec: the write reaches the file within about a second
        await settles(lambda: persisted(server.data_dir, "sku-ann")
                      and persisted(server.data_dir, "sku-bob"), timeout=5)
        assert await store.delete("ann") is True
        await settles(lambda: not persisted(server.data_dir, "sku-ann"), timeout=interval + 15)
        # The rewrite that dropped ann just ran: bob's waits for the interval.
        assert await store.delete("bob") is True
        await asyncio.sleep(0.5)
        assert persisted(server.data_dir, "sku-bob")
        waited = await settles(lambda: not persisted(server.data_dir, "sku-bob"),
                            timeout=interval + 15)
        assert waited > 1.0
    finally:
        await store.close()
        server.stop()
    server.start()
    restarted = RedisWindowStore(
        server.url, prefix="seqcast", ttl_seconds=3600, seen_capacity=100,
        metrics=Metrics(CollectorRegistry()), erasure_rewrite_seconds=0,
    )
    try:
        assert [len(w) for w in await restarted.read(["ann", "bob", "kept"])] == [0, 0, 5]
    finally:
        await restarted.close()
        server.stop()


def test_delete_through_the_service_erases_the_user_from_the_embedded_redis_files(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, tmp_path: Path,
    events: Callable[..., dict[str, Any]], wait_until: Callable[..., None],
) -> None:
    """The embedded redis-server (no URL); a 1 s interval instead of the default 60 s."""
    settings = make_settings(redis_url=None, data_dir=tmp_path / "var",
                             erasure_rewrite_seconds=1, redis_key_prefix="seqcast")
    with TestClient(create_app(settings, registry)) as client:
        for user in ("erase-me-7f3a", "stays-9c1b"):
            assert client.post("/v1/events", json=events(user, 4)).status_code == 200
        wait_until(lambda: persisted(tmp_path / "var", "erase-me-7f3a"), 5)  # everysec
        assert client.delete("/v1/users/erase-me-7f3a").json()["deleted"] is True
        wait_until(lambda: not persisted(tmp_path / "var", "erase-me-7f3a"), 20)
        assert client.get("/v1/users/stays-9c1b/prediction").json()["window_length"] == 4
