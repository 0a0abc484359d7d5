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
    browsing = client.get("/v1/users/u-demo/prediction").json()
    r = client.post("/v1/events", json={"events": [cart]})
    assert r.status_code == 200, r.text
    carted = client.get("/v1/users/u-demo/prediction").json()

    buy_rate = a.manifest.priors.behavior[3]  # the share of buys among next events
    assert carted["next_behavior"]["buy"] > 0.3
    assert carted["next_behavior"]["buy"] > 5 * buy_rate
    assert carted["next_behavior"]["buy"] > 5 * browsing["next_behavior"]["buy"]
    assert carted["purchase_probability"] > browsing["purchase_probability"]
