"""Trainer and service calibrate alike: the evaluator's probabilities for test points of a
synthetic log (`model.evaluation.network.onnx_scorer`, the trainer's evaluation) are the
service's answers over real HTTP for the same windows, and both differ from the network's
own probabilities where the demo artifact's chosen calibrator is not "none"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model.artifact import load_artifact
from model.evaluation.network import onnx_scorer
from model.sequences import TimeSplit
from model.sequences import test_points as points_of
from model.synth import simulate

pytestmark = pytest.mark.slow


def test_the_evaluators_calibrated_probabilities_are_the_services(
    client: TestClient, demo_artifact: Path
) -> None:
    artifact = load_artifact(demo_artifact)
    manifest = artifact.manifest
    calibrators = manifest.calibrators
    assert {calibrators.behavior.kind, calibrators.purchase.kind} != {"none"}

    log = simulate(30, seed=5).log
    end = int(log.ts.max())
    split = TimeSplit(val_cutoff=end - 2 * 86400, test_cutoff=end - 86400, end=end)
    window_len = manifest.features.window_len
    points = points_of(log, split, window_len, manifest.horizon_seconds,
                       manifest.return_gap_seconds)
    points = points.take(slice(0, 45))  # at most 1,000 events in one request
    scored = onnx_scorer(artifact).score(log, points)
    assert scored.uncalibrated is not None

    names = ("view", "fav", "cart", "buy")
    sequences = []
    for start, length in zip(points.start.tolist(), points.length.tolist(), strict=True):
        rows = range(start, start + length)
        sequences.append({"events": [
            {"item_id": str(log.item_ids[log.item[j]]),
             "category_id": str(log.category_ids[log.category[j]]),
             "behavior": names[int(log.behavior[j])], "timestamp": int(log.ts[j])}
            for j in rows]})
    served = []
    for sequence in sequences:  # each asked about the moment of its last event, as evaluated
        r = client.post("/v1/predict", json={"sequences": [sequence], "top_k": 1,
                                             "at": sequence["events"][-1]["timestamp"]})
        assert r.status_code == 200, r.text
        served += r.json()["predictions"]
    tol = manifest.parity_tolerance
    np.testing.assert_allclose([p["purchase_probability"] for p in served], scored.purchase,
                               atol=tol)
    np.testing.assert_allclose([p["return_probability"] for p in served], scored.returns,
                               atol=tol)
    np.testing.assert_allclose([[p["next_behavior"][b] for b in manifest.behaviors]
                                for p in served], scored.behavior, atol=tol)
    for kind, ours, raw in ((calibrators.behavior.kind, scored.behavior,
                             scored.uncalibrated.behavior),
                            (calibrators.purchase.kind, scored.purchase,
                             scored.uncalibrated.purchase)):
        if kind != "none":
            assert np.abs(ours - raw).max() > 10 * tol
