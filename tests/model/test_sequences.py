"""Split, labels and prediction points, checked against a brute-force reading of the rules."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model.features import MISSING, Behavior, Vocab
from model.sequences import (
    CENSORED,
    EventLog,
    Points,
    TimeSplit,
    later_points,
    prediction_points,
    purchase_labels,
    return_labels,
    validation_points,
    window_rows,
)
from model.sequences import (
    test_points as evaluation_points,
)

rows = st.lists(
    st.tuples(
        st.integers(0, 3),  # user
        st.sampled_from([int(b) for b in Behavior]),
        st.integers(0, 400),  # ts
    ),
    min_size=1,
    max_size=40,
)


def make_log(r: list[tuple[int, int, int]]) -> EventLog:
    user, behavior, ts = (np.array(c) for c in zip(*r, strict=True))
    n = len(r)
    return EventLog.from_codes(
        user,
        np.arange(n),
        np.zeros(n),
        behavior,
        ts,
        np.array([f"u{k}" for k in range(4)]),
        np.array([f"i{k}" for k in range(n)]),
        np.array(["c"]),
    )


def brute_force(log: EventLog, j: int, hit, lo: int, hi: int, known_until: int) -> int:
    later = [
        k
        for k in range(j + 1, len(log))
        if log.user[k] == log.user[j] and hit(k) and lo <= log.ts[k] <= hi
    ]
    if hi > known_until:
        return CENSORED
    return 1 if later else 0


@settings(max_examples=80, deadline=None)
@given(rows, st.integers(1, 200), st.integers(0, 450))
def test_purchase_labels_match_the_rule(r, horizon, known_until) -> None:
    log = make_log(r)
    labels = purchase_labels(log, horizon, known_until)
    for j in range(len(log)):
        expected = brute_force(
            log, j, lambda k: log.behavior[k] == Behavior.BUY, log.ts[j], log.ts[j] + horizon,
            known_until,
        )
        assert labels[j] == expected, j


@settings(max_examples=80, deadline=None)
@given(rows, st.integers(1, 200), st.integers(1, 100), st.integers(0, 450), st.integers(0, 9))
def test_later_points_ask_between_the_last_and_the_next_event(r, horizon, gap, known_until,
                                                             seed) -> None:
    log = make_log(r)
    points = prediction_points(log, 5, horizon, gap, target_from=0, target_until=10**6,
                               known_until=known_until)
    later = later_points(log, points, horizon, gap, known_until, seed)
    assert later.start.tolist() == points.start.tolist()
    assert later.last.tolist() == points.last.tolist()
    lo, hi = log.ts[points.last], log.ts[points.target]
    assert ((later.now >= lo) & ((later.now < hi) | (later.now == lo))).all()
    for k, j in enumerate(points.last):
        now = int(later.now[k])
        buy = brute_force(log, j, lambda e: log.behavior[e] == Behavior.BUY, now, now + horizon,
                          known_until)
        back = brute_force(log, j, lambda e: True, now + gap, now + horizon, known_until)
        assert (later.purchase[k], later.returns[k]) == (buy, back), k
    if (hi > lo + 1).sum() >= 8:
        assert (later.now > lo).any(), "the later moments are not all the last event's"


@settings(max_examples=80, deadline=None)
@given(rows, st.integers(1, 200), st.integers(1, 100), st.integers(0, 450))
def test_return_labels_match_the_rule(r, horizon, gap, known_until) -> None:
    log = make_log(r)
    labels = return_labels(log, horizon, gap, known_until)
    for j in range(len(log)):
        expected = brute_force(
            log, j, lambda k: True, log.ts[j] + gap, log.ts[j] + horizon, known_until
        )
        assert labels[j] == expected, j


def test_log_is_grouped_by_user_and_time_ordered() -> None:
    log = make_log([(1, 0, 50), (0, 0, 30), (1, 3, 10), (0, 1, 30)])
    assert log.user.tolist() == [0, 0, 1, 1]
    assert log.ts.tolist() == [30, 30, 10, 50]
    assert log.item.tolist() == [1, 3, 2, 0], "ties keep the input order"
    starts, ends = log.user_bounds()
    assert starts.tolist() == [0, 2] and ends.tolist() == [2, 4]
    assert log.position_in_user().tolist() == [0, 1, 0, 1]


@settings(max_examples=60, deadline=None)
@given(rows, st.integers(1, 5))
def test_test_points_cover_every_test_event_with_history(r, window_len) -> None:
    log = make_log(r)
    split = TimeSplit(val_cutoff=100, test_cutoff=200, end=int(log.ts.max()))
    p = evaluation_points(log, split, window_len, horizon=50, return_gap=10)
    pos = log.position_in_user()
    expected = [k for k in range(len(log)) if log.ts[k] >= 200 and pos[k] > 0]
    assert p.target.tolist() == expected
    assert np.all(log.user[p.start] == log.user[p.target])
    assert np.all((p.length >= 1) & (p.length <= window_len))
    assert np.all((p.length == window_len) | (pos[p.start] == 0)), "windows are as long as allowed"


def test_validation_points_never_see_the_test_period() -> None:
    log = make_log([(0, 0, 10), (0, 0, 150), (0, 3, 210), (1, 0, 120), (1, 0, 160)])
    split = TimeSplit(val_cutoff=100, test_cutoff=200, end=210)
    before, p = validation_points(log, split, window_len=4, horizon=250, return_gap=5)
    assert before.ts.max() < 200
    assert before.ts[p.target].tolist() == [150, 160]
    # User 0's buy at 210 is in the test period: the label after ts=150 is censored, not 1.
    assert p.purchase.tolist() == [CENSORED, CENSORED]


def test_split_by_fraction_orders_cutoffs() -> None:
    log = make_log([(0, 0, 0), (0, 0, 1000)])
    s = TimeSplit.by_fraction(log, test_fraction=0.2, val_fraction=0.1)
    assert (s.val_cutoff, s.test_cutoff, s.end) == (700, 800, 1000)


def test_window_rows_are_the_windows_in_order() -> None:
    zeros = np.zeros(2, dtype=np.int8)
    w = Points(start=np.array([3, 10]), last=np.array([5, 10]), purchase=zeros,
               returns=zeros, now=np.array([0, 0])).window_rows()
    assert w.events.tolist() == [3, 4, 5, 10]
    assert w.starts.tolist() == [0, 3] and w.lengths.tolist() == [3, 1]
    assert w.window.tolist() == [0, 0, 0, 1] and w.offset.tolist() == [0, 1, 2, 0]
    none = window_rows(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert none.events.tolist() == [] and none.starts.tolist() == []


def test_id_tables_map_to_vocabulary_rows() -> None:
    log = make_log([(0, 0, 1), (0, 0, 2), (1, 0, 3)])
    log = EventLog.from_codes(log.user, log.item, log.category, log.behavior, log.ts,
                              log.user_ids, np.array(["i0", "i1", "stranger"]),
                              np.array(["c", ""]))
    items, categories = Vocab(["i1", "i0"], 4), Vocab(["c"], 2)
    index = log.item_index(items)
    assert index.tolist()[:2] == [items.index_of("i0"), items.index_of("i1")]
    assert items.is_oov(index[2:]).all() and index[2] == items.index_of("stranger")
    assert log.category_index(categories).tolist() == [categories.index_of("c"), MISSING]
