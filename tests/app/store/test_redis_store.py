"""The Redis window store against a real redis-server: de-duplication, time order,
trimming, TTL, deletion, and a property test against a plain-Python model of a window."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from app.errors import StoreUnavailable
from app.metrics import Metrics
from app.store.keys import seen_key, window_key
from app.store.redis_store import RedisWindowStore, redact_url
from app.store.window_store import StoredEvent
from model.features import Event

pytestmark = pytest.mark.anyio


def test_redacted_urls_hide_the_password_only() -> None:
    assert redact_url("redis://:s3cret@cache:6379/0") == "redis://***@cache:6379/0"
    assert redact_url("rediss://app:s3cret@h:6380") == "rediss://app:***@h:6380"
    assert redact_url("redis://localhost:6379/0") == "redis://localhost:6379/0"


def ev(event_id: str, ts: float, item: str = "i", behavior: int = 0) -> StoredEvent:
    return StoredEvent(event_id, Event(item, "c", behavior, ts))


async def test_duplicates_are_counted_once_within_and_across_batches(
    store: RedisWindowStore,
) -> None:
    first = await store.append({"u": [ev("a", 1), ev("b", 2), ev("a", 3)]}, window_len=10)
    assert (first["u"].added, first["u"].duplicates, first["u"].length) == (2, 1, 2)
    again = await store.append({"u": [ev("b", 2), ev("c", 4)]}, window_len=10)
    assert (again["u"].added, again["u"].duplicates, again["u"].length) == (1, 1, 3)
    (window,) = await store.read(["u"])
    assert [e.ts for e in window] == [1, 2, 4]


async def test_late_events_land_in_time_order_and_ties_keep_arrival_order(
    store: RedisWindowStore,
) -> None:
    await store.append({"u": [ev("a", 10, "x"), ev("b", 30, "y")]}, window_len=10)
    await store.append({"u": [ev("c", 20, "late"), ev("d", 30, "tie")]}, window_len=10)
    (window,) = await store.read(["u"])
    assert [e.item_id for e in window] == ["x", "late", "y", "tie"]


async def test_window_keeps_the_most_recent_events(store: RedisWindowStore) -> None:
    result = await store.append({"u": [ev(str(i), float(i)) for i in range(12)]}, window_len=5)
    assert result["u"].length == 5
    # A late event older than the whole window falls out at once.
    await store.append({"u": [ev("old", 0.5)]}, window_len=5)
    (window,) = await store.read(["u"])
    assert [e.ts for e in window] == [7, 8, 9, 10, 11]


async def test_windows_expire_with_the_ttl_and_unknown_users_read_empty(
    store: RedisWindowStore,
) -> None:
    await store.append({"u": [ev("a", 1)]}, window_len=5)
    assert 3590 < await (await store.client()).ttl(window_key(store.prefix, "u")) <= 3600
    assert await (await store.client()).ttl(seen_key(store.prefix, "u")) > 3590
    await (await store.client()).expire(window_key(store.prefix, "u"), 0)
    assert await store.read(["u", "nobody"]) == [[], []]


async def test_delete_erases_window_and_seen_ids(store: RedisWindowStore) -> None:
    await store.append({"u": [ev("a", 1)]}, window_len=5)
    assert await store.delete("u") is True
    assert await store.delete("u") is False
    assert await (await store.client()).exists(seen_key(store.prefix, "u")) == 0
    # After erasure the same event id is new again.
    assert (await store.append({"u": [ev("a", 1)]}, window_len=5))["u"].added == 1


async def test_one_batch_appends_many_users_independently(store: RedisWindowStore) -> None:
    results = await store.append(
        {"u1": [ev("a", 1)], "u2": [ev("a", 1), ev("b", 2)]}, window_len=5
    )
    assert {u: r.length for u, r in results.items()} == {"u1": 1, "u2": 2}
    w1, w2 = await store.read(["u1", "u2"])
    assert len(w1) == 1 and len(w2) == 2


async def test_unreachable_redis_raises_store_unavailable_without_the_password() -> None:
    from app.embedded_redis import free_port

    store = RedisWindowStore(
        f"redis://:hunter2@127.0.0.1:{free_port()}/0", prefix="p", ttl_seconds=60,
        seen_capacity=10, metrics=Metrics(CollectorRegistry()), timeout_seconds=0.2,
        erasure_rewrite_seconds=0,
    )
    with pytest.raises(StoreUnavailable) as info:
        await store.read(["u"])
    assert "hunter2" not in info.value.message
    assert await store.ping() is False
    await store.close()


batches = st.lists(
    st.lists(
        st.tuples(st.sampled_from("abcdefghij"), st.integers(0, 20)), min_size=1, max_size=6
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=batches)
async def test_window_matches_a_plain_model_of_its_semantics(
    store: RedisWindowStore, batches: list[list[tuple[str, int]]]
) -> None:
    """Unique event ids, sorted by (time, arrival), the last `window_len` kept."""
    user = f"prop-{id(batches)}-{len(str(batches))}"
    await store.delete(user)
    seen: set[str] = set()
    expected: list[tuple[int, int, str]] = []
    arrival = 0
    for batch in batches:
        await store.append({user: [ev(eid, ts, item=eid) for eid, ts in batch]}, window_len=4)
        for eid, ts in batch:
            if eid not in seen:
                seen.add(eid)
                arrival += 1
                expected.append((ts, arrival, eid))
    (window,) = await store.read([user])
    assert [e.item_id for e in window] == [eid for _, _, eid in sorted(expected)[-4:]]
