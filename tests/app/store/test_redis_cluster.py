"""The Redis window store on a real three-node Redis Cluster: cluster mode detected from a URL
at any node, batches that span every node's slots, erasure, and a restarted node."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from localcluster import LocalCluster
from prometheus_client import CollectorRegistry
from redis.asyncio.cluster import RedisCluster

from app.metrics import Metrics
from app.store.keys import window_key
from app.store.redis_store import RedisWindowStore
from app.store.window_store import StoredEvent
from model.features import Event

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

StoreFactory = Callable[[str], RedisWindowStore]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def make_store(key_prefix: str) -> AsyncIterator[StoreFactory]:
    stores: list[RedisWindowStore] = []

    def make(url: str) -> RedisWindowStore:
        store = RedisWindowStore(
            url, prefix=key_prefix, ttl_seconds=3600, seen_capacity=50,
            metrics=Metrics(CollectorRegistry()), timeout_seconds=0.5,
            erasure_rewrite_seconds=0,
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


def ev(event_id: str, ts: float) -> StoredEvent:
    return StoredEvent(event_id, Event("i", "c", 0, ts))


async def test_a_url_at_any_node_is_a_cluster_client_and_a_standalone_url_is_not(
    redis_cluster: LocalCluster, redis_url: str, make_store: StoreFactory,
) -> None:
    for node in redis_cluster.nodes:
        assert isinstance(await make_store(node.url).client(), RedisCluster)
    assert not isinstance(await make_store(redis_url).client(), RedisCluster)


async def test_one_batch_spans_every_node_and_reads_back_per_user(
    redis_cluster: LocalCluster, make_store: StoreFactory, key_prefix: str,
) -> None:
    store = make_store(redis_cluster.nodes[2].url)
    users = [f"u{i}" for i in range(60)]
    nodes = {redis_cluster.node_of(window_key(key_prefix, u)) for u in users}
    assert nodes == {0, 1, 2}
    results = await store.append(
        {u: [ev(f"{u}-{j}", float(j)) for j in range(i % 4 + 1)] for i, u in enumerate(users)},
        window_len=10,
    )
    assert {u: r.added for u, r in results.items()} == {u: i % 4 + 1 for i, u in enumerate(users)}
    windows = await store.read(users)
    assert [len(w) for w in windows] == [i % 4 + 1 for i in range(len(users))]
    # Re-sent ids are duplicates on every node: each script ran on its user's slot.
    again = await store.append({u: [ev(f"{u}-0", 0.0)] for u in users}, window_len=10)
    assert all(r.duplicates == 1 and r.added == 0 for r in again.values())
    for index, node in enumerate(redis_cluster.nodes):
        with node.client() as client:
            held = {k.split("{")[1].split("}")[0] for k in client.keys(f"{key_prefix}:*:w")}
        assert held == {u for u in users if redis_cluster.node_of(window_key(key_prefix, u))
                        == index}


async def test_erasure_on_a_cluster_removes_both_keys(
    redis_cluster: LocalCluster, make_store: StoreFactory,
) -> None:
    store = make_store(redis_cluster.nodes[0].url)
    await store.append({"gone": [ev("a", 1.0)], "kept": [ev("a", 1.0)]}, window_len=5)
    assert await store.delete("gone") is True
    assert await store.delete("gone") is False
    assert [len(w) for w in await store.read(["gone", "kept"])] == [0, 1]
