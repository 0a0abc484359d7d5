"""Random scored predictions for the live-figure tests (`tests/app/test_monitor.py`, and the
worker processes it starts)."""

from __future__ import annotations

import numpy as np

from app.store.pending import Outcome, PendingPrediction

VERSION = "v-test"


def outcomes(seed: int, n: int) -> list[Outcome]:
    """Random predictions and outcomes drawn from them (so calibrated, with an AUC > 0.5)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        behavior = rng.dirichlet(np.ones(4))
        purchase, returns = rng.uniform(0.01, 0.99, 2)
        p = PendingPrediction(VERSION, 1e9, 1e9, 86400, 1800, tuple(behavior.tolist()),
                              float(purchase), float(returns))
        out.append(Outcome(p, int(rng.choice(4, p=behavior)), bool(rng.random() < purchase),
                           None if rng.random() < 0.3 else bool(rng.random() < returns)))
    return out
