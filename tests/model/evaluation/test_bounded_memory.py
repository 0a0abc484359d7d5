"""Evaluation at a 2M-item catalog holds no (points x catalog) matrix: the exported model and
the ranking baselines, scored on shoppers whose log's item id table has 2M codes."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model.artifact import load_artifact
from model.baselines.registry import Fitting, fit_baseline
from model.evaluation.network import onnx_scorer
from model.evaluation.protocol import Horizon
from model.evaluation.scoring import score_points
from model.sequences import EventLog, TimeSplit
from model.sequences import test_points as points_of

CATALOG = 2_000_000
N_POINTS = 200
# A (points x catalog) float32 matrix of N_POINTS points is 1.6 GB, a (256 x catalog) one
# 2 GB. What evaluation may hold besides its per-code vectors: a few blocks of scores.
PEAK_BYTES = 256 << 20


def catalog_log() -> EventLog:
    """Synthetic shoppers (ids in the demo model's vocabulary) whose item id table is padded
    with ids no event touches up to CATALOG codes: every code is ranked all the same."""
    from model.synth import generate

    log = generate(40, seed=1)
    pad = np.array([f"catalog-{k}" for k in range(CATALOG - len(log.item_ids))], dtype=object)
    return replace(log, item_ids=np.concatenate([log.item_ids, pad]))


@pytest.mark.slow
def test_evaluation_at_a_2m_item_catalog_holds_no_points_by_catalog_matrix(
    demo_artifact: Path,
) -> None:
    log = catalog_log()
    split = TimeSplit.by_fraction(log, 0.2, 0.1)
    artifact = load_artifact(demo_artifact)
    m = artifact.manifest
    h = Horizon(m.features.window_len, m.horizon_seconds, m.return_gap_seconds,
                m.features.tz_offset_seconds)
    points = points_of(log, split, h.window_len, h.horizon, h.return_gap).sample(N_POINTS, 0)
    assert len(points) == N_POINTS

    tracemalloc.start()
    try:
        results = {"model": score_points(onnx_scorer(artifact), log, points)}
        for name in ("popularity", "markov", "last"):
            scorer = fit_baseline(name, Fitting(log, split, h))
            results[name] = score_points(scorer, log, points)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"evaluation peaked at {peak / 2**20:.0f} MiB"
    for name, result in results.items():
        item = result["next_item"]
        assert item["n"] == len(points), name
        assert item["unseen_rate"] < 1.0, f"{name} ranks some targets"
        assert 0.0 < item["recall@20"] <= 1.0, name
