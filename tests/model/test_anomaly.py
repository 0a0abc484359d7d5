"""The anomaly score's parts (`model.features.scripted_features`, `model.anomaly`): what each
scripted measure counts, and levels that do not call a common value unusual."""

from __future__ import annotations

import numpy as np

from model.anomaly import COMBINED, SURPRISE, AnomalyScorer, Levels, quantile_table
from model.features import (
    SCRIPTED_FEATURES,
    Event,
    FeatureSpec,
    Vocab,
    featurize_windows,
    scripted_features,
)

SPEC = FeatureSpec(window_len=20)
ITEMS = Vocab([f"i{k}" for k in range(30)], n_oov=4)
CATEGORIES = Vocab(["c0", "c1"], n_oov=2)


def _features(windows: list[list[Event]]) -> dict[str, np.ndarray]:
    return featurize_windows(windows, SPEC, ITEMS, CATEGORIES)


def _scripted(windows: list[list[Event]]) -> np.ndarray:
    return scripted_features(_features(windows), SPEC)


def test_scripted_measures_count_repeats_fast_gaps_and_one_gap_length() -> None:
    burst = [Event("i1", "c0", 0, 1000.0 + k) for k in range(12)]  # identical, 1 s apart
    person = [Event(f"i{k}", "c1", k % 2, 1000.0 + t)
              for k, t in enumerate([0, 40, 43, 200, 900, 950])]
    alternating = [Event("i2", "c0", k % 2, 5000.0 + 60 * k) for k in range(6)]
    got = _scripted([burst, person, alternating, burst[:1]])  # padded to 12 columns
    assert got.shape == (4, len(SCRIPTED_FEATURES))
    assert got[0].tolist() == [11, 11, 11]  # every gap of 1 s: fast and in one bucket
    # distinct events; one gap of 3 s; gaps 40, 3, 157, 700, 50 s: 40 and 50 share a bucket
    assert got[1].tolist() == [0, 1, 2]
    assert got[2].tolist() == [4, 0, 5]  # two distinct (item, behavior) pairs; 60 s apart
    assert got[3].tolist() == [0, 0, 0]  # one event: no gap, nothing repeated


def test_level_is_the_share_below_and_ties_are_not_unusual() -> None:
    values = np.r_[np.zeros(900), np.arange(1, 101)]  # 90 % zeros, then 1..100
    table = quantile_table(values)
    got = Levels(table)(np.array([0.0, 50.0, 100.0, 101.0, -1.0]))
    assert got[0] == 0.0  # nine in ten windows share it: nothing unusual
    assert abs(got[1] - 0.95) < 0.002
    assert got[2] >= 0.99 and got[3] == 1.0 and got[4] == 0.0


def test_the_combined_score_is_the_rank_of_the_strongest_measure() -> None:
    """Ordinary windows score evenly (the combined table ranks them), a window beyond every
    ordinary one on a single measure scores 1, a one-event window has no score."""
    rng = np.random.default_rng(0)
    surprise_table = quantile_table(rng.normal(3, 0.5, 5000))
    tables = {SURPRISE: surprise_table,
              **{name: quantile_table(rng.poisson(2, 5000)) for name in SCRIPTED_FEATURES}}
    scorer = AnomalyScorer(surprise_table, tables, SPEC)
    measures = np.column_stack([rng.normal(3, 0.5, 4000), rng.normal(3, 0.5, 4000),
                                rng.poisson(2, (4000, 3))])
    tables[COMBINED] = quantile_table(scorer.strongest(measures))
    scored = Levels(tables[COMBINED])(scorer.strongest(measures))
    assert abs(float(np.median(scored)) - 0.5) < 0.1
    assert (scored > 0.99).mean() < 0.03
    beyond = np.array([[3.0, 3.0, 2, 19, 2]])
    assert Levels(tables[COMBINED])(scorer.strongest(beyond))[0] == 1.0
    one = _features([[Event("i1", "c0", 0, 0.0)]])
    _, score = AnomalyScorer(surprise_table, tables, SPEC).scores(one, np.zeros((1, 1)))
    assert np.isnan(score[0])
