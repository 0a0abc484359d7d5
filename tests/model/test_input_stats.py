"""The manifest's input statistics (the service's drift reference): the rule on a small log,
and the statistics a trained artifact carries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.artifact import WINDOW_LENGTH_EDGES, InputStats, bin_of, load_artifact
from model.features import BEHAVIOR_NAMES, DEFAULT_GAP_EDGES


def test_window_lengths_gaps_and_behaviors_of_a_small_log() -> None:
    stats = InputStats.of_events(
        user=np.array([0, 0, 0, 1]), behavior=np.array([0, 0, 3, 2]),
        ts=np.array([0, 10, 70, 5]), window_len=2, gap_edges=(5, 30),
        held_out_item_unknown=np.array([True, False, False, False]),
        held_out_category_unknown=np.array([], dtype=bool),
    )
    assert stats.events == 4
    assert stats.behavior == [0.5, 0.0, 0.25, 0.25]
    # lengths 1, 2, 2 (capped at window_len), 1: bins of edges (2, 3, ...)
    assert stats.window_length[:2] == [0.5, 0.5] and sum(stats.window_length) == 1
    assert stats.gap == [0.0, 0.5, 0.5]  # gaps 10 and 60 s: one in [5, 30), one from 30 on
    assert (stats.unknown_item, stats.unknown_category) == (0.25, 0.0)


def test_bins_put_each_edge_in_the_bin_it_opens() -> None:
    assert bin_of([0, 1, 2, 2.5, 3, 100], (1, 2, 3)).tolist() == [0, 1, 2, 2, 3, 3]


@pytest.mark.slow
def test_a_trained_artifact_carries_its_training_statistics(demo_artifact: Path) -> None:
    stats = load_artifact(demo_artifact).manifest.input_stats
    assert stats is not None and stats.events > 1000
    assert len(stats.behavior) == len(BEHAVIOR_NAMES)
    assert stats.window_length_edges == list(WINDOW_LENGTH_EDGES)
    assert stats.gap_edges == list(DEFAULT_GAP_EDGES)
    for shares in (stats.behavior, stats.window_length, stats.gap):
        assert sum(shares) == pytest.approx(1.0)
    assert stats.behavior[0] > 0.5  # synthetic shoppers mostly view
    assert 0.0 <= stats.unknown_item < 0.5
