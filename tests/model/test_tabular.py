"""The window's recency features (`model.tabular`): what the baseline's whole-log reading
gives when the window is the user's whole history, and only the idle time moving with the
moment asked about."""

from __future__ import annotations

import numpy as np
from eventlogs import CATEGORIES, ITEMS, USERS, event_log, event_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from model.baselines.recency import FEATURE_NAMES, RecencyFeatures
from model.features import Features, FeatureSpec, featurize_indexed
from model.sequences import EventLog, Points
from model.tabular import TABULAR_FEATURES, tabular_features


def _prefixes(rows: list[tuple[int, ...]]) -> tuple[EventLog, Features, FeatureSpec]:
    """The log of `rows` and the featurized window of every prefix of each user's events."""
    log = event_log(rows, USERS, ITEMS, CATEGORIES)
    last = np.arange(len(log))
    start = last - log.position_in_user()
    spec = FeatureSpec(window_len=64, tz_offset_seconds=3600)
    features = featurize_indexed(log.item + 2, log.category + 2, log.behavior, log.ts, start,
                                 last - start + 1, spec)
    return log, features, spec


def _windows(rows: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tabular features of every prefix of each user's events, the same prefixes' recency
    features, the log's ts at each prefix's last event)."""
    log, features, spec = _prefixes(rows)
    last = np.arange(len(log))
    start = last - log.position_in_user()
    recency = RecencyFeatures(log, tz_offset_seconds=3600)(
        Points(start, last, np.zeros(len(log), np.int8), np.zeros(len(log), np.int8),
               log.ts[last]))
    return tabular_features(features, log.ts[last], spec), recency, log.ts[last]


@settings(max_examples=40, deadline=None)
@given(event_rows(min_size=1))
def test_on_a_whole_history_the_features_are_the_baselines_reading(
    rows: list[tuple[int, ...]],
) -> None:
    tabular, recency, _ = _windows(rows)
    assert tabular.shape == (len(recency), len(TABULAR_FEATURES))
    shared = [n for n in TABULAR_FEATURES if n in FEATURE_NAMES]
    assert len(shared) >= 20
    got = tabular[:, [TABULAR_FEATURES.index(n) for n in shared]]
    want = recency[:, [FEATURE_NAMES.index(n) for n in shared]].astype(np.float32)
    np.testing.assert_array_equal(got, want)
    events = tabular[:, TABULAR_FEATURES.index("window_events")]
    np.testing.assert_array_equal(events, recency[:, FEATURE_NAMES.index("history_len")])
    assert (tabular[:, TABULAR_FEATURES.index("idle_seconds")] == 0).all()


@settings(max_examples=20, deadline=None)
@given(event_rows(min_size=1), st.integers(1, 10 * 86400))
def test_asking_later_moves_the_idle_time_alone(rows: list[tuple[int, ...]], wait: int) -> None:
    log, features, spec = _prefixes(rows)
    last = np.arange(len(log))
    now = tabular_features(features, log.ts[last], spec)
    later = tabular_features(features, log.ts[last] + wait, spec)
    idle = TABULAR_FEATURES.index("idle_seconds")
    assert (later[:, idle] == wait).all()
    others = [k for k in range(len(TABULAR_FEATURES)) if k != idle]
    np.testing.assert_array_equal(later[:, others], now[:, others])
    earlier = tabular_features(features, log.ts[last] - wait, spec)
    assert (earlier[:, idle] == 0).all(), "a moment before the last event is no idle time"


def test_a_hand_read_window() -> None:
    # u0: view i0 at 0, fav i1 at 100, view i0 at 4000 (a new session), cart i0 at 4010
    rows = [(0, 0, 0, 0, 0), (0, 1, 1, 1, 100), (0, 0, 0, 0, 4000), (0, 0, 0, 2, 4010)]
    tabular, _, ts = _windows(rows)
    x = dict(zip(TABULAR_FEATURES, tabular[-1].tolist(), strict=True))
    assert x["window_events"] == 4
    assert (x["window_view"], x["window_fav"], x["window_cart"], x["window_buy"]) == (2, 1, 1, 0)
    assert (x["hour_view"], x["hour_fav"], x["hour_cart"]) == (1, 0, 1)  # within 3600 s of 4010
    assert x["last_behavior"] == 2 and x["gap_before_last"] == 10
    assert x["since_fav"] == 3910 and x["since_cart"] == 0 and np.isnan(x["since_buy"])
    assert x["last_item_touches"] == 3 and x["last_item_carted"] == 1
    assert x["last_item_faved"] == 0 and x["last_category_touches"] == 3
    assert x["distinct_items"] == 2 and x["distinct_categories"] == 2
    assert x["session_events"] == 2 and x["session_seconds"] == 10
    assert ts[-1] == 4010
