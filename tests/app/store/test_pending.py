"""Served predictions awaiting their outcome, against a real redis-server: the append script
scores them by the trainer's label rules, keeps what is still open and drops what is done."""

from __future__ import annotations

import time

import pytest

from app.store.keys import pending_key
from app.store.pending import Outcome, PendingPrediction
from app.store.redis_store import RedisWindowStore
from app.store.window_store import StoredEvent
from model.features import Behavior, Event

pytestmark = pytest.mark.anyio

T = 1_000_000.0
HORIZON, GAP = 3600, 600


def prediction(version: str = "v", served_at: float | None = None) -> PendingPrediction:
    return PendingPrediction(version, T, time.time() if served_at is None else served_at,
                             HORIZON, GAP, (0.7, 0.1, 0.1, 0.1), 0.2, 0.6)


async def post(store: RedisWindowStore, *events: tuple[str, float, Behavior]) -> list[Outcome]:
    batch = [StoredEvent(eid, Event("i", "c", int(b), ts)) for eid, ts, b in events]
    return list((await store.append({"u": batch}, window_len=10))["u"].outcomes)


def facts(outcomes: list[Outcome]) -> list[tuple[int | None, bool | None, bool | None]]:
    return [(o.next_behavior, o.purchased, o.returned) for o in outcomes]


async def test_each_outcome_is_scored_once_when_it_becomes_known(
    store: RedisWindowStore, redis_url: str,
) -> None:
    await post(store, ("e0", T, Behavior.VIEW))
    kept = await store.record({"u": [prediction()]}, capacity=4, ttl_seconds=100)
    assert [p.field for p in kept] == [f"v|{T!r}"]
    assert await store.record({"u": [prediction()]}, capacity=4, ttl_seconds=100) == []
    # The earliest event at or after t is the next one, whatever the order they came in.
    got = await post(store, ("e2", T + 20, Behavior.CART), ("e1", T + 10, Behavior.FAV))
    assert facts(got) == [(int(Behavior.FAV), None, None)]
    assert got[0].prediction == prediction(served_at=got[0].prediction.served_at)
    assert await post(store, ("e3", T + 30, Behavior.VIEW)) == []  # nothing new to score
    assert facts(await post(store, ("e4", T + GAP, Behavior.VIEW))) == [(None, None, True)]
    # A buy exactly at the horizon still counts; the prediction is then done and gone.
    assert facts(await post(store, ("e5", T + HORIZON, Behavior.BUY))) == [(None, True, None)]
    assert await post(store, ("e6", T + HORIZON + 1, Behavior.BUY)) == []
    client = await store.client()
    assert not await client.exists(pending_key(store.prefix, "u"))


async def test_the_horizon_passes_by_event_time_or_by_the_server_clock(
    store: RedisWindowStore,
) -> None:
    await post(store, ("e0", T, Behavior.VIEW))
    await store.record({"u": [prediction("late-event")]}, capacity=4, ttl_seconds=100)
    # One event past the horizon: no buy and no return came within it.
    got = await post(store, ("e1", T + HORIZON + 5, Behavior.VIEW))
    assert facts(got) == [(int(Behavior.VIEW), False, False)]

    await post(store, ("e2", T, Behavior.VIEW))  # a late event: before the prediction time
    await store.record({"u": [prediction("old", served_at=time.time() - HORIZON - 1)]},
                       capacity=4, ttl_seconds=100)
    got = await post(store, ("e3", T + 5, Behavior.VIEW))
    assert facts(got) == [(int(Behavior.VIEW), False, False)]  # served over a horizon ago


async def test_events_before_the_prediction_and_resent_ones_score_nothing(
    store: RedisWindowStore,
) -> None:
    await post(store, ("e0", T, Behavior.VIEW))
    await store.record({"u": [prediction()]}, capacity=4, ttl_seconds=100)
    assert await post(store, ("e0", T, Behavior.VIEW)) == []  # re-sent
    assert await post(store, ("early", T - 60, Behavior.BUY)) == []  # before t
    assert facts(await post(store, ("e1", T + 1, Behavior.BUY))) == [
        (int(Behavior.BUY), True, None)]
