"""The demo model teaches: what the synthetic shop plants (model/synth.py, F2: a cart is
checked out at once half the time) is what the served demo model answers, over real HTTP
with real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from model.artifact import load_artifact

pytestmark = pytest.mark.slow

T0 = 1_512_200_000


def test_after_a_cart_the_demo_model_expects_a_buy_far_above_the_base_rate(
    client: TestClient, demo_artifact: Path
) -> None:
    a = load_artifact(demo_artifact)
    items, cats = a.items.ids, a.categories.ids
    views = [{"user_id": "u-demo", "item_id": items[k], "category_id": cats[k % len(cats)],
              "behavior": "view", "timestamp": T0 + 40 * k, "event_id": f"e{k}"}
             for k in range(6)]
    cart = {**views[-1], "behavior": "cart", "timestamp": T0 + 40 * 5 + 8, "event_id": "e-cart"}
    r = client.post("/v1/events", json={"events": views})
    assert r.status_code == 200, r.text
    # asked about the moment just after each event, as a storefront asks during a visit
    browsing = client.get(f"/v1/users/u-demo/prediction?at={T0 + 40 * 5 + 1}").json()
    r = client.post("/v1/events", json={"events": [cart]})
    assert r.status_code == 200, r.text
    carted = client.get(f"/v1/users/u-demo/prediction?at={cart['timestamp'] + 1}").json()

    buy_rate = a.manifest.priors.behavior[3]  # the share of buys among next events
    assert carted["next_behavior"]["buy"] > 0.3
    assert carted["next_behavior"]["buy"] > 5 * buy_rate
    assert carted["next_behavior"]["buy"] > 5 * browsing["next_behavior"]["buy"]
    assert carted["purchase_probability"] > browsing["purchase_probability"]


def test_an_idle_shoppers_purchase_probability_falls_with_idle_time(
    client: TestClient, demo_artifact: Path
) -> None:
    a = load_artifact(demo_artifact)
    items, cats = a.items.ids, a.categories.ids
    events = [{"user_id": "u-idle", "item_id": items[k % 3], "category_id": cats[0],
               "behavior": "cart" if k == 3 else "view", "timestamp": T0 + 30 * k,
               "event_id": f"i{k}"} for k in range(4)]
    assert client.post("/v1/events", json={"events": events}).status_code == 200
    last = events[-1]["timestamp"]
    waits = [0, 60, 3600, 86400, 3 * 86400, 30 * 86400]
    purchase = [client.get(f"/v1/users/u-idle/prediction?at={last + w}").json()
                ["purchase_probability"] for w in waits]
    pairs = zip(purchase, purchase[1:], strict=False)
    assert all(later <= sooner for sooner, later in pairs), purchase
    assert purchase[-1] < purchase[0] - 0.02, purchase
    # the default moment is the request's: events from 2017 are years idle by now
    assert client.get("/v1/users/u-idle/prediction").json()["purchase_probability"] == (
        purchase[-1])
    # a stateless what-if question may name its moment too, and answers alike
    r = client.post("/v1/predict", json={"sequences": [{"user_id": "x", "events": [
        {k: e[k] for k in ("item_id", "category_id", "behavior", "timestamp")}
        for e in events]}], "at": last + 3600})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["purchase_probability"] == purchase[2]


def test_a_bad_moment_is_refused_naming_the_parameter(client: TestClient) -> None:
    r = client.get("/v1/users/u-idle/prediction?at=yesterday")
    assert r.status_code == 422, r.text
    assert "query.at" in r.text and "unix time" in r.text
