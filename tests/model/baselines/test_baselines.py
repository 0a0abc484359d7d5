"""Baselines on hand-made logs where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from eventlogs import CATEGORIES, ITEMS, USERS, event_log, event_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from model.baselines.classical import Transitions
from model.baselines.recency import FEATURE_NAMES, RecencyFeatures
from model.baselines.registry import BASELINES, Fitting, fit_baseline, select
from model.evaluation.protocol import Horizon, Scorer
from model.evaluation.ranking import FixedScores
from model.evaluation.scoring import score_points
from model.features import Behavior
from model.sequences import EventLog, Points, TimeSplit
from model.sequences import test_points as points_of

# A buy follows a cart after 60 s and anything else after 120 s or more: with a 90 s horizon,
# "purchase" means "the last event was a cart".
H = Horizon(window_len=5, horizon=90, return_gap=30)
CYCLE = [Behavior.VIEW, Behavior.CART, Behavior.BUY]


def cycle_log(n_users: int = 30, n_events: int = 30) -> tuple[EventLog, TimeSplit]:
    """Every user walks items 0 -> 1 -> 2 -> 0 ... (categories alike, behaviors view -> cart
    -> buy -> view), one event a minute; users start at different times. A first-order
    Markov chain explains everything; item 3 appears only in the test period."""
    rows = []
    for u in range(n_users):
        t0 = 1_000_000 + 37 * u
        for k in range(n_events):
            rows.append((u, k % 3, k % 3, CYCLE[k % 3], t0 + 60 * k))
    last_t = rows[-1][4]
    rows.append((n_users - 1, 3, n_events % 3, CYCLE[n_events % 3], last_t + 60))
    log = event_log(rows, [f"u{u}" for u in range(n_users)], ["a", "b", "c", "new"],
                    ["ca", "cb", "cc"])
    start, end = int(log.ts.min()), int(log.ts.max())
    test_cutoff = start + int(0.7 * (end - start))
    return log, TimeSplit(val_cutoff=test_cutoff - 300, test_cutoff=test_cutoff, end=end)


def fit(name: str, log: EventLog, split: TimeSplit, h: Horizon = H) -> Scorer:
    return fit_baseline(name, Fitting(log, split, h))


def test_transitions_cells_are_the_counts_plus_popularity() -> None:
    t = Transitions.count(np.array([0, 0, 0, 2]), np.array([1, 1, 3, 0]), 4)
    cells = t.cells(np.array([0, 1, 2, 0]), FixedScores(np.array([0.1, 0.2, 0.3, 0.4])))
    got = sorted(zip(cells.point.tolist(), cells.code.tolist(), cells.value.tolist(),
                     strict=True))
    assert got == [(0, 1, 2.2), (0, 3, 1.4), (2, 0, 1.1), (3, 1, 2.2), (3, 3, 1.4)]


def test_markov_learns_the_deterministic_cycle() -> None:
    log, split = cycle_log()
    points = points_of(log, split, H.window_len, H.horizon, H.return_gap)
    markov = score_points(fit("markov", log, split), log, points)
    assert markov["next_behavior"]["accuracy"] == 1.0
    assert markov["next_behavior"]["macro_auc"] == 1.0
    # Every target but the one unseen item is ranked first.
    n = len(points)
    assert markov["next_item"]["recall@20"] == pytest.approx((n - 1) / n)
    assert markov["next_item"]["ndcg@10"] == pytest.approx((n - 1) / n)
    assert markov["next_item"]["unseen_rate"] == pytest.approx(1 / n)
    assert markov["next_category"]["ndcg@10"] == pytest.approx(1.0)
    # After a cart the buy comes within the horizon: the purchase rate by last behavior.
    assert markov["purchase"]["auc"] > 0.9


def test_popularity_and_last_are_what_they_say() -> None:
    log, split = cycle_log()
    points = points_of(log, split, H.window_len, H.horizon, H.return_gap)
    pop = fit("popularity", log, split).score(log, points)
    assert pop.behavior is not None and pop.item is not None and pop.purchase is not None
    assert np.allclose(pop.behavior, pop.behavior[0])  # one answer for everyone
    # Item 3 is never seen before the test cutoff: the one target it is cannot rank.
    assert (~pop.item.seen == (log.item[points.target] == 3)).all()
    # A seen target ranks below the items with more training events, tied with as many.
    counts = np.bincount(log.item[log.ts < split.test_cutoff], minlength=4)
    own = counts[log.item[points.target]][pop.item.seen]
    assert (pop.item.better[pop.item.seen] == (counts > own[:, None]).sum(axis=1)).all()
    assert (pop.item.ties[pop.item.seen] == (counts == own[:, None]).sum(axis=1) - 1).all()
    assert len(np.unique(pop.purchase)) == 1

    last_scorer = fit("last", log, split)
    last = last_scorer.score(log, points)
    assert last.purchase is None and last.returns is None
    assert last.behavior is not None and last.item is not None
    assert (last.behavior.argmax(axis=1) == log.behavior[points.last]).all()
    assert np.allclose(last.behavior.sum(axis=1), 1.0)
    # The next item of the cycle (0 -> 1 -> 2 -> 0) was touched three events ago: the last
    # two items rank above it, nothing ties with it; item 3 is in no window before its point.
    cycled = log.item[points.target] != 3
    assert (last.item.better[cycled] == 2).all() and (last.item.ties[cycled] == 0).all()
    assert (last.item.seen == cycled).all()
    result = score_points(last_scorer, log, points)
    assert "purchase" not in result and "return" not in result
    assert result["next_behavior"]["accuracy"] == 0.0  # the cycle never repeats a behavior


def test_lightgbm_learns_the_funnel_from_recency_features() -> None:
    log, split = cycle_log(n_users=40)
    points = points_of(log, split, H.window_len, H.horizon, H.return_gap)
    result = score_points(fit("lightgbm", log, split), log, points)
    assert set(result) == {"next_behavior", "purchase"}
    assert result["next_behavior"]["accuracy"] == 1.0
    assert result["purchase"]["auc"] > 0.9


def test_lightgbm_without_purchase_labels_answers_behavior_only() -> None:
    """A log shorter than the horizon censors every purchase label (the REES46 sample: 3 h
    of events, a 24 h horizon): no purchase trees, the behavior head still answers."""
    log, split = cycle_log(n_users=40)
    long = Horizon(window_len=5, horizon=10 * 86400, return_gap=30)
    points = points_of(log, split, long.window_len, long.horizon, long.return_gap)
    result = score_points(fit("lightgbm", log, split, long), log, points)
    assert set(result) == {"next_behavior"}
    assert result["next_behavior"]["accuracy"] == 1.0


def test_unknown_baseline_is_refused() -> None:
    log, split = cycle_log(n_users=2)
    with pytest.raises(ValueError, match="unknown baseline"):
        fit("oracle", log, split)
    with pytest.raises(ValueError, match="unknown baselines"):
        select(["popularity", "oracle"])
    assert select(["lightgbm", "popularity"]) == ["popularity", "lightgbm"]  # report order
    assert select(True) == list(BASELINES) and select(False) == []


def _naive_features(log: EventLog, start: int, last: int, tz: int) -> list[float]:
    """The recency features of one point, read off the user's events one by one."""
    user = log.user[last]
    history = [k for k in range(last + 1) if log.user[k] == user]
    t = log.ts[last]
    b = log.behavior.astype(int)

    def count(ks: list[int], beh: int) -> int:
        return sum(1 for k in ks if b[k] == beh)

    window = list(range(start, last + 1))
    hour = [k for k in history if log.ts[k] >= t - 3600]
    day = [k for k in history if log.ts[k] >= t - 86400]
    since = []
    for beh in range(4):
        ks = [k for k in history if b[k] == beh]
        since.append(float(t - log.ts[ks[-1]]) if ks else np.nan)
    same_item = [k for k in history if log.item[k] == log.item[last]]
    session = [history[0]]
    for k in history[1:]:
        session = [k] if log.ts[k] - log.ts[k - 1] > 1800 else [*session, k]
    return [
        len(window),
        len(history),
        *(count(window, beh) for beh in range(4)),
        *(count(hour, beh) for beh in range(4)),
        *(count(day, beh) for beh in range(4)),
        b[last],
        float(t - log.ts[history[-2]]) if len(history) > 1 else np.nan,
        *since,
        len(same_item),
        any(b[k] == Behavior.CART for k in same_item),
        any(b[k] == Behavior.FAV for k in same_item),
        sum(1 for k in history if log.category[k] == log.category[last]),
        len(session),
        t - log.ts[session[0]],
        ((t + tz) // 3600) % 24,
        ((t + tz) // 86400 + 3) % 7,
    ]


@settings(max_examples=40, deadline=None)
@given(event_rows(min_size=2), st.integers(1, 6))
def test_recency_features_match_a_naive_reading(rows: list[tuple[int, ...]], window: int) -> None:
    log = event_log(rows, USERS, ITEMS, CATEGORIES)
    last = np.arange(len(log))
    start = last - np.minimum(log.position_in_user(), window - 1)
    zeros = np.zeros(len(log), dtype=np.int8)
    points = Points(start, last, zeros, zeros, log.ts[last])
    x = RecencyFeatures(log, tz_offset_seconds=3600)(points)
    assert x.shape == (len(log), len(FEATURE_NAMES))
    want = np.array(
        [_naive_features(log, int(s), int(j), 3600) for s, j in zip(start, last, strict=True)]
    )
    np.testing.assert_array_equal(x, want.astype(np.float64))
