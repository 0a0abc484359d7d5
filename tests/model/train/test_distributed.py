"""Training under torchrun: users sharded across the ranks, and rank 0 alone writing the
artifact (once), evaluating it and reporting, while the other rank waits and exits 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from watchers import ManifestWatcher

from model.artifact import load_artifact
from model.data import load_log
from model.export import PARITY_TOLERANCE
from model.pipeline import parity_windows
from model.runtime import OnnxModel
from model.sequences import SplitConfig
from model.synth import write_csv
from model.train.batches import training_windows
from model.train.distributed import Placement


def test_each_user_trains_on_one_rank_and_the_shares_match_in_size(tmp_path: Path) -> None:
    csv = tmp_path / "shoppers.csv"
    write_csv(csv, 300, 1)
    events = load_log(csv, "taobao", progress=False).log
    starts, lengths = training_windows(events, 20)
    user_starts = events.user_bounds()[0]
    cpu = torch.device("cpu")
    shares = [Placement(cpu, 3, r).user_share(starts, lengths, user_starts, 7) for r in range(3)]
    every = np.sort(np.concatenate(shares))
    assert np.array_equal(every, np.arange(len(starts)))  # every window once
    users = [set(events.user[starts[s]]) for s in shares]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    share_events = [int(lengths[s].sum()) for s in shares]
    assert max(share_events) - min(share_events) <= 2 * events.user_bounds()[1].max()
    assert max(share_events) < 0.4 * lengths.sum()
    one = Placement(cpu).user_share(starts, lengths, user_starts, 7)
    assert np.array_equal(one, np.arange(len(starts)))


@pytest.mark.slow
def test_two_ranks_write_one_valid_artifact_once(tmp_path: Path) -> None:
    csv = tmp_path / "shoppers.csv"
    write_csv(csv, 160, 3)
    out = tmp_path / "artifact"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "model.dispatch", "train", "--data", str(csv), "--format", "taobao",
        "--out", str(out), "--preset", "tiny", "--epochs", "2", "--no-baselines",
    ]
    watcher = ManifestWatcher(out)
    watcher.start()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    finally:
        watcher.done.set()
        watcher.join()
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(watcher.seen) == 1, watcher.seen  # one manifest write, by one rank
    printed = json.loads(done.stdout)  # one report object: a second would be "Extra data"
    assert set(printed) >= {"next_behavior", "purchase"}
    for line in ("exported ", "loop: epoch 1:", "artifact in "):
        assert done.stderr.count(line) == 1, (line, done.stderr[-3000:])

    artifact = load_artifact(out)
    stats = artifact.manifest.extra["train_stats"]
    assert stats["world_size"] == 2
    assert max(artifact.manifest.extra["parity_max_error"].values()) <= PARITY_TOLERANCE
    data = load_log(csv, "taobao", progress=False)
    split = SplitConfig().apply(data.log)
    history = json.loads((out / "report" / "metrics.json").read_text())["training"]["history"]
    # Both ranks' events are counted: far more than either rank's half of the windows.
    assert history[0]["train_events"] > 0.75 * stats["train_events"]
    windows = parity_windows(data.log, split, artifact.manifest.features.window_len, 0)
    behavior = OnnxModel(artifact).score(windows)["behavior_probs"]
    assert np.allclose(behavior.sum(axis=1), 1, atol=1e-5)
