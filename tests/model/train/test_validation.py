"""Validation in bounded memory: the item head's log-probability of each validation target
without a (points x items) matrix."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import resource
import numpy as np
import torch
from model.features import INPUT_NAMES
from model.net.config import NetConfig
from model.net.network import SeqNet
from model.train.validation import last_position_logits

rows, points = 2_000_000, 1024
net = SeqNet(NetConfig(n_items=rows, n_categories=30, n_gaps=19, window_len=10, d_model=8,
                       n_layers=1, n_heads=2, copy=True, behavior_stats=True))
rng = np.random.default_rng(0)
high = {"item": rows, "category": 30, "behavior": 5, "gap": 19, "hour": 25, "weekday": 8}
features = {k: rng.integers(1, high[k], (points, 10)) for k in INPUT_NAMES}
target = rng.integers(-1, rows, points)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = last_position_logits(net, features, torch.device("cpu"), target)
assert out["item_logp"].shape == (points,) and bool(torch.isfinite(out["item_logp"]).all())
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown // 1024)
"""


def test_validation_never_builds_a_points_x_items_matrix() -> None:
    """2M item rows, batches of 512 points: one (512, 2M) float32 score matrix is 4 GB, so
    the peak memory of validation growing by less than 512 MB shows none was built."""
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=True)
    grown_mb = int(done.stdout.split()[-1])
    assert grown_mb < 512, f"validation grew the peak RSS by {grown_mb} MB"
