"""The store's fixtures: a real three-node Redis Cluster for the session (`localcluster`), and
a store on the session's redis-server with a key prefix of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from localcluster import LocalCluster
from prometheus_client import CollectorRegistry

from app.metrics import Metrics
from app.store.redis_store import RedisWindowStore


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real three-node Redis Cluster for the session (tests that stop a node restart it)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisWindowStore]:
    s = RedisWindowStore(
        redis_url, prefix=key_prefix, ttl_seconds=3600, seen_capacity=50,
        metrics=Metrics(CollectorRegistry()), erasure_rewrite_seconds=0,
    )
    yield s
    await s.close()
