"""The live figures' maths against the trainer's metrics on the same outcomes, the drift
score, and their sums over several worker processes (prometheus_client's multiprocess
files), as /metrics and GET /v1/model/live read them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from liveoutcomes import VERSION, outcomes
from prometheus_client import CollectorRegistry, generate_latest

from app import monitor
from app.metrics import Metrics, multiprocess_registry
from model import metrics as offline


def test_live_figures_equal_the_offline_metrics_of_the_same_outcomes() -> None:
    scored = outcomes(0, 600)
    m = Metrics(CollectorRegistry())
    m.live_recorded.labels(VERSION).inc(800)
    m.observe_outcomes(scored)
    f = m.live_figures()[VERSION]
    behavior = np.array([o.prediction.behavior for o in scored])
    nb = np.array([o.next_behavior for o in scored])
    assert f["scored_share"] == 600 / 800
    live = f["live"]
    assert live["next_behavior"]["log_loss"] == pytest.approx(offline.log_loss(nb, behavior))
    assert live["next_behavior"]["accuracy"] == pytest.approx(
        offline.accuracy(nb, behavior.argmax(1)))
    p = np.array([o.prediction.purchase for o in scored])
    y = np.array([o.purchased for o in scored], dtype=np.int64)
    assert live["purchase"]["log_loss"] == pytest.approx(offline.log_loss(y, p))
    # 20 equal-width bins: the offline ECE and AUC over the same bins agree exactly.
    assert live["purchase"]["ece"] == pytest.approx(offline.reliability(p, y, 20).ece)
    assert live["purchase"]["auc"] == pytest.approx(offline.roc_auc(y, np.floor(p * 20)))
    assert live["purchase"]["auc"] > 0.6  # outcomes drawn from the predictions
    returned = [o for o in scored if o.returned is not None]
    assert live["return"]["scored"] == len(returned) < 600
    curve = live["purchase"]["reliability"]
    assert sum(b["count"] for b in curve) == 600
    assert all(abs(b["predicted"] - (float(b["bin"]) + 0.025)) <= 0.025 + 1e-9 for b in curve)


def test_auc_and_psi_on_known_values() -> None:
    assert monitor.auc_of_bins([0, 0, 5], [5, 0, 0]) == 1.0
    assert monitor.auc_of_bins([5, 0, 0], [0, 0, 5]) == 0.0
    assert monitor.auc_of_bins([2, 2], [2, 2]) == 0.5
    assert monitor.auc_of_bins([1, 0], [0, 0]) is None
    assert monitor.psi([0.5, 0.5], [60, 60]) == pytest.approx(0.0)
    assert monitor.psi([0.5, 0.5], [90, 30]) == pytest.approx(
        (0.75 - 0.5) * np.log(0.75 / 0.5) + (0.25 - 0.5) * np.log(0.25 / 0.5))
    assert monitor.psi([0.5, 0.5], [9, 3]) is None  # too few observations to say
    assert [monitor.probability_bin(p) for p in (0.0, 0.049, 0.05, 0.999, 1.0)] == [
        "0.00", "0.00", "0.05", "0.95", "0.95"]


WORKER = """
import sys
from app.metrics import Metrics
from liveoutcomes import outcomes
seed = int(sys.argv[1])
m = Metrics()
m.live_recorded.labels("v-test").inc(400)
m.observe_outcomes(outcomes(seed, 300))
"""


def test_figures_sum_every_worker_process(tmp_path: Path) -> None:
    """Two processes count their own outcomes into the multiprocess directory; the derived
    figures are those of all their outcomes together, as one process would compute them."""
    root = Path(__file__).resolve().parents[2]
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp"),
                        "PYTHONPATH": f"{root / 'tests'}{os.pathsep}{root}"}
    (tmp_path / "mp").mkdir()
    for seed in (1, 2):
        subprocess.run([sys.executable, "-c", WORKER, str(seed)], env=env, check=True,
                       timeout=60)
    together = Metrics(CollectorRegistry())
    together.live_recorded.labels(VERSION).inc(800)
    together.observe_outcomes(outcomes(1, 300) + outcomes(2, 300))
    want = together.live_figures()[VERSION]
    registry = multiprocess_registry(str(tmp_path / "mp"))
    got = monitor.live_figures(monitor.samples_of(registry.collect()))[VERSION]
    assert got["scored_share"] == want["scored_share"] == 600 / 800
    for target in monitor.TARGETS:
        for name, value in want["live"][target].items():
            if isinstance(value, float):
                assert got["live"][target][name] == pytest.approx(value), (target, name)
    text = generate_latest(registry).decode()
    assert f'seqcast_live_auc{{target="purchase",version="{VERSION}"}}' in text
