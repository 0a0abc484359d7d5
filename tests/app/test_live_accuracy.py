"""Live accuracy end to end: served predictions kept in Redis beside the window, scored by
the append script when the outcome arrives, and reported per model version on /metrics and
GET /v1/model/live (real trained model, real redis-server, TestClient)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from app.store.keys import pending_key
from model.artifact import load_artifact

pytestmark = pytest.mark.slow

T0 = 1_714_564_800.0
BEHAVIORS = ("view", "fav", "cart", "buy")


def ev(user: str, i: int, behavior: str, ts: float, items: list[str]) -> dict[str, Any]:
    return {"user_id": user, "item_id": items[i % len(items)], "category_id": None,
            "behavior": behavior, "timestamp": ts, "event_id": f"{user}-{i}"}


@pytest.fixture
def known_items(demo_artifact: Path) -> list[str]:
    return load_artifact(demo_artifact).items.ids[:20]


def history(client: TestClient, user: str, items: list[str], n: int = 4) -> float:
    """Post n views of known items; the last event's time."""
    body = {"events": [ev(user, i, "view", T0 + 60 * i, items) for i in range(n)]}
    assert client.post("/v1/events", json=body).status_code == 200
    return T0 + 60 * (n - 1)


def predict(client: TestClient, user: str) -> dict[str, Any]:
    r = client.get(f"/v1/users/{user}/prediction")
    assert r.status_code == 200, r.text
    return r.json()


def live_of(client: TestClient, version: str) -> dict[str, Any]:
    body = client.get("/v1/model/live").json()
    return next(v for v in body["versions"] if v["version"] == version)


def log_loss(p: float, fired: bool) -> float:
    return -math.log(p if fired else 1 - p)


def test_outcomes_score_the_served_predictions(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, known_items: list[str],
    wait_until: Callable[..., None],
) -> None:
    """A buy within the horizon scores next behavior = buy and purchase = 1; an event past
    the horizon scores next behavior and purchase = 0, return = 0. The figures are exactly
    the log losses of the answers that were served."""
    settings = make_settings(live_sample_share=1.0)
    with TestClient(create_app(settings, registry)) as client:
        t_a = history(client, "buyer", known_items)
        t_b = history(client, "leaver", known_items)
        a, b = predict(client, "buyer"), predict(client, "leaver")
        version = a["model_version"]
        wait_until(lambda: live_of(client, version)["recorded"] == 2)
        horizon = a["horizon_seconds"]
        client.post("/v1/events", json=ev("buyer", 10, "buy", t_a + 120, known_items))
        client.post("/v1/events", json=ev("leaver", 10, "view", t_b + horizon + 60,
                                          known_items))
        live = live_of(client, version)
        nb = live["targets"]["next_behavior"]
        assert live["role"] == "primary" and live["scored_share"] == 1.0
        assert nb["scored"] == 2
        want = (log_loss(a["next_behavior"]["buy"], True)
                + log_loss(b["next_behavior"]["view"], True)) / 2
        assert nb["log_loss"] == pytest.approx(want, rel=1e-6)
        best = [max(p["next_behavior"], key=p["next_behavior"].get) for p in (a, b)]
        assert nb["accuracy"] == ((best[0] == "buy") + (best[1] == "view")) / 2
        purchase = live["targets"]["purchase"]
        assert purchase["scored"] == 2 and purchase["positive_rate"] == 0.5
        assert purchase["log_loss"] == pytest.approx(
            (log_loss(a["purchase_probability"], True)
             + log_loss(b["purchase_probability"], False)) / 2, rel=1e-6)
        # One positive, one negative: the AUC says whether the buyer was ranked higher.
        pa, pb = a["purchase_probability"], b["purchase_probability"]
        same_bin = int(pa * 20) == int(pb * 20)
        assert purchase["auc"] == (0.5 if same_bin else float(pa > pb))
        assert sum(x["count"] for x in purchase["reliability"]) == 2
        # The buyer's return is still open (no event after the return gap yet).
        assert live["targets"]["return"]["scored"] == 1
        assert purchase["training"]["log_loss"] == pytest.approx(
            load_artifact(settings.artifact_dir).manifest.metrics["purchase"]["log_loss"])
        text = client.get("/metrics").text
        labels = f'target="next_behavior",version="{version}"'
        assert f"seqcast_live_predictions_scored_total{{{labels}}} 2.0" in text
        assert f'seqcast_live_log_loss{{target="next_behavior",version="{version}"}}' in text
        assert f'seqcast_model_report{{metric="purchase_auc",version="{version}"}}' in text


def test_log_loss_and_accuracy_move_with_the_outcomes(
    make_settings: Callable[..., Settings], known_items: list[str],
    wait_until: Callable[..., None],
) -> None:
    """Users who do what the model found most likely give accuracy 1 and a lower log loss
    than users who do what it found least likely (accuracy 0)."""
    figures = []
    for pick in (max, min):
        with TestClient(create_app(make_settings(live_sample_share=1.0),
                                   CollectorRegistry())) as client:
            for u in range(6):
                user = f"{pick.__name__}-{u}"
                t = history(client, user, known_items[u:], n=3 + u)
                answer = predict(client, user)
                wait_until(lambda a=answer, n=u + 1:
                           live_of(client, a["model_version"])["recorded"] == n)
                probs = answer["next_behavior"]
                client.post("/v1/events", json=ev(user, 99, pick(probs, key=probs.get),
                                                  t + 30, known_items))
            figures.append(live_of(client, answer["model_version"])["targets"]["next_behavior"])
    likely, unlikely = figures
    assert likely["scored"] == unlikely["scored"] == 6
    assert (likely["accuracy"], unlikely["accuracy"]) == (1.0, 0.0)
    assert likely["log_loss"] < unlikely["log_loss"]


def test_resent_and_late_events_score_nothing(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, known_items: list[str],
    wait_until: Callable[..., None],
) -> None:
    with TestClient(create_app(make_settings(live_sample_share=1.0), registry)) as client:
        t = history(client, "u", known_items)
        version = predict(client, "u")["model_version"]
        wait_until(lambda: live_of(client, version)["recorded"] == 1)
        client.post("/v1/events", json=ev("u", 3, "view", t, known_items))  # re-sent
        client.post("/v1/events", json=ev("u", 50, "buy", t - 600, known_items))  # late
        assert live_of(client, version)["targets"]["next_behavior"]["scored"] == 0
        client.post("/v1/events", json=ev("u", 51, "cart", t + 5, known_items))
        assert live_of(client, version)["targets"]["next_behavior"]["scored"] == 1


def test_kept_predictions_are_bounded_expire_and_are_erased(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, known_items: list[str],
    redis_url: str, key_prefix: str, wait_until: Callable[..., None],
) -> None:
    settings = make_settings(live_sample_share=1.0, live_pending_per_user=2,
                             live_grace_seconds=100)
    with TestClient(create_app(settings, registry)) as client, \
            redis.Redis.from_url(redis_url, decode_responses=True) as r:
        key = pending_key(key_prefix, "u")
        t = history(client, "u", known_items, n=2)
        horizon = predict(client, "u")["horizon_seconds"]
        predict(client, "u")  # the same window again: kept once
        wait_until(lambda: r.hlen(key) == 1)
        for i in range(3):  # later windows; the prediction before each is scored (next behavior)
            client.post("/v1/events", json=ev("u", 10 + i, "view", t + 10 * (i + 1),
                                              known_items))
            predict(client, "u")
        wait_until(lambda: live_of(client, predict(client, "u")["model_version"])["recorded"]
                   == 4)
        assert r.hlen(key) == 2  # bounded: the latest two window states
        times = sorted(float(f.rsplit("|", 1)[1]) for f in r.hkeys(key))
        assert times == [t + 20, t + 30]
        assert horizon + 90 < r.ttl(key) <= horizon + 100
        assert client.delete("/v1/users/u").json()["deleted"] is True
        assert not r.exists(key)


def test_no_prediction_is_kept_at_a_zero_share(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, known_items: list[str],
    redis_url: str, key_prefix: str,
) -> None:
    with TestClient(create_app(make_settings(live_sample_share=0.0), registry)) as client:
        history(client, "u", known_items)
        for _ in range(5):
            predict(client, "u")
        client.post("/v1/events?predict=true", json=ev("u", 9, "view", T0 + 900, known_items))
    with redis.Redis.from_url(redis_url) as r:
        assert not r.exists(pending_key(key_prefix, "u"))
