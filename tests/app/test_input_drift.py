"""Input drift against the training data: live inputs like the training data's score a low
PSI, unknown items and another behavior mix a high one (real model, real redis-server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from model.artifact import load_artifact
from model.features import BEHAVIOR_NAMES

pytestmark = pytest.mark.slow

T0 = 1_714_564_800.0


def drift_after(settings: Settings, events: list[dict[str, Any]]) -> dict[str, Any]:
    with TestClient(create_app(settings, CollectorRegistry())) as client:
        for start in range(0, len(events), 500):
            assert client.post("/v1/events", json={"events": events[start:start + 500]}
                               ).status_code == 200
        for user in sorted({e["user_id"] for e in events}):
            client.get(f"/v1/users/{user}/prediction")
        text = client.get("/metrics").text
        (version,) = client.get("/v1/model/live").json()["versions"]
    assert 'seqcast_input_drift_psi{feature="behavior"' in text
    return version["drift"]


def test_psi_is_low_for_training_like_inputs_and_high_for_drifted_ones(
    make_settings: Callable[..., Settings], demo_artifact: Path,
) -> None:
    artifact = load_artifact(demo_artifact)
    stats = artifact.manifest.input_stats
    assert stats is not None
    rng = np.random.default_rng(0)
    items = artifact.items.ids
    like = [{"user_id": f"like{i // 4}", "item_id": items[int(rng.integers(len(items)))],
             "behavior": BEHAVIOR_NAMES[int(rng.choice(4, p=stats.behavior))],
             "timestamp": T0 + i, "event_id": f"l{i}"} for i in range(400)]
    drifted = [{"user_id": f"new{i // 4}", "item_id": f"never-seen-{i}", "behavior": "buy",
                "timestamp": T0 + i, "event_id": f"d{i}"} for i in range(400)]
    usual, unusual = drift_after(make_settings(), like), drift_after(make_settings(), drifted)
    assert usual["item"]["unknown_share"] == 0.0 and unusual["item"]["unknown_share"] == 1.0
    assert usual["behavior"]["observations"] == unusual["behavior"]["observations"] == 400
    assert usual["behavior"]["psi"] < 0.1 < 1.0 < unusual["behavior"]["psi"]
    assert unusual["item"]["psi"] > 1.0 > usual["item"]["psi"]
    assert usual["window_length"]["observations"] == 100  # one scored window per user
