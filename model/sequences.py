"""Event logs as per-user sequences: the time split, the labels, and the test points.

Everything that decides *what is predicted from what* lives here, so the Transformer, the
baselines and the external benchmarks are scored on exactly the same points.

A prediction point is "just after event j of a user": the window is the user's events up
to and including j (the last window_len of them). Its targets:
    next behavior / item / category   event j+1 of the same user
    purchase                          a later buy in [ts_j, ts_j + horizon]
    return                            an event in [ts_j + return_gap, ts_j + horizon]
A binary label whose horizon runs past the end of what is known (the log's end, or the
training cutoff) is censored (-1) and left out of loss and metrics, whether it fired or not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from model.features import Behavior, Event, Vocab

CENSORED = -1
LABEL_CHUNK = 1 << 22  # events per step of the label search (_next_time_where)


@dataclass(frozen=True)
class EventLog:
    """Events of many users, grouped by user and in time order within a user.

    user/item/category are int64 codes into user_ids/item_ids/category_ids (raw ids as str);
    behavior is the Behavior code (int8); ts unix seconds (int64).
    """

    user: np.ndarray
    item: np.ndarray
    category: np.ndarray
    behavior: np.ndarray
    ts: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    category_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_codes(
        cls,
        user: np.ndarray,
        item: np.ndarray,
        category: np.ndarray,
        behavior: np.ndarray,
        ts: np.ndarray,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        category_ids: np.ndarray,
    ) -> EventLog:
        """Build a log from unordered rows: sorts by (user, ts), keeping row order on ties
        (lexsort is stable)."""
        order = np.lexsort((ts, user))
        return cls(
            user=np.asarray(user, dtype=np.int64)[order],
            item=np.asarray(item, dtype=np.int64)[order],
            category=np.asarray(category, dtype=np.int64)[order],
            behavior=np.asarray(behavior, dtype=np.int8)[order],
            ts=np.asarray(ts, dtype=np.int64)[order],
            user_ids=np.asarray(user_ids, dtype=object),
            item_ids=np.asarray(item_ids, dtype=object),
            category_ids=np.asarray(category_ids, dtype=object),
        )

    def take(self, mask: np.ndarray) -> EventLog:
        """The events where mask is true (order kept, id tables shared)."""
        return replace(
            self,
            user=self.user[mask],
            item=self.item[mask],
            category=self.category[mask],
            behavior=self.behavior[mask],
            ts=self.ts[mask],
        )

    def user_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends): events of the k-th user present are [starts[k], ends[k])."""
        if len(self) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        change = np.flatnonzero(np.diff(self.user)) + 1
        starts = np.concatenate(([0], change)).astype(np.int64)
        ends = np.concatenate((change, [len(self)])).astype(np.int64)
        return starts, ends

    def events(self, start: int, stop: int) -> list[Event]:
        """Events [start, stop) as the service stores them (raw ids, unix seconds)."""
        return [
            Event(
                str(self.item_ids[self.item[k]]),
                str(self.category_ids[self.category[k]]) or None,
                int(self.behavior[k]),
                float(self.ts[k]),
            )
            for k in range(start, stop)
        ]

    def position_in_user(self) -> np.ndarray:
        """For each event, how many earlier events its user has."""
        starts, ends = self.user_bounds()
        return np.arange(len(self)) - np.repeat(starts, ends - starts)

    def item_index(self, vocab: Vocab) -> np.ndarray:
        """code -> vocabulary index of every item id (`index[log.item]` indexes the events)."""
        return vocab_index(self.item_ids, vocab)

    def category_index(self, vocab: Vocab) -> np.ndarray:
        """code -> vocabulary index of every category id."""
        return vocab_index(self.category_ids, vocab)


def vocab_index(raw_ids: np.ndarray, vocab: Vocab) -> np.ndarray:
    """The vocabulary index of each raw id of an id table: known row, hashed OOV bucket, or
    MISSING for an empty id (`Vocab.index_of`)."""
    return vocab.lookup(None if r is None else str(r) for r in raw_ids)


@dataclass(frozen=True)
class WindowRows:
    """Windows events[start : start + length] of a log laid end to end: the only events a
    batch of windows reads, so a batch costs O(batch x window) however long the log is."""

    events: np.ndarray  # (E,) log index of each window event, window after window
    starts: np.ndarray  # (B,) where each window begins in `events`
    lengths: np.ndarray  # (B,)

    @property
    def window(self) -> np.ndarray:
        """(E,) the window each event belongs to."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    @property
    def offset(self) -> np.ndarray:
        """(E,) position of each event inside its window, 0 for its oldest."""
        return np.arange(len(self.events)) - np.repeat(self.starts, self.lengths)


def window_rows(starts: np.ndarray, lengths: np.ndarray) -> WindowRows:
    """The events of the windows events[starts[k] : starts[k] + lengths[k]], flattened."""
    lengths = np.asarray(lengths, dtype=np.int64)
    local_starts = np.cumsum(lengths) - lengths
    offset = np.arange(lengths.sum()) - np.repeat(local_starts, lengths)
    return WindowRows(np.repeat(np.asarray(starts, dtype=np.int64), lengths) + offset,
                      local_starts, lengths)


@dataclass(frozen=True)
class TimeSplit:
    """Global time cutoffs: train < val_cutoff <= validation < test_cutoff <= test."""

    val_cutoff: int
    test_cutoff: int
    end: int

    @classmethod
    def by_fraction(cls, log: EventLog, test_fraction: float, val_fraction: float) -> TimeSplit:
        """Cutoffs at fractions of the log's time span (test last, validation before it)."""
        start, end = int(log.ts.min()), int(log.ts.max())
        span = end - start
        test_cutoff = end - int(span * test_fraction)
        val_cutoff = test_cutoff - int(span * val_fraction)
        return cls(val_cutoff=val_cutoff, test_cutoff=test_cutoff, end=end)


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of the log's time span: the test period last, validation just before it.

    Validation must outlast the purchase horizon: a binary label counts only once its whole
    horizon is observed, so a validation period shorter than the horizon has no purchase
    labels to stop early or calibrate on (on the 9-day Taobao sample 0.2 is 1.8 days).
    """

    test_fraction: float = 0.2
    val_fraction: float = 0.2

    def apply(self, events: EventLog) -> TimeSplit:
        return TimeSplit.by_fraction(events, self.test_fraction, self.val_fraction)


def _next_time_where(
    log: EventLog, event_mask: np.ndarray, at: np.ndarray | None, not_before: np.ndarray
) -> np.ndarray:
    """For each event j of `at` (None: every event): the ts of the first masked event k > j
    of the same user with ts_k >= not_before (aligned with at); int64 max where there is
    none."""
    n = len(log) if at is None else len(at)
    out = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    idx = np.flatnonzero(event_mask)
    if len(idx) == 0:
        return out
    # The log is sorted by (user, ts), so masked events are sorted both by index and by this
    # key; the answer is the first masked event that is past j in both orders. The events j
    # are taken LABEL_CHUNK at a time, so the search's temporaries stay bounded.
    t0 = int(log.ts.min())
    key = log.user[idx] * (1 << 34) + (log.ts[idx] - t0)
    for lo in range(0, n, LABEL_CHUNK):
        j = np.arange(lo, min(lo + LABEL_CHUNK, n)) if at is None else at[lo : lo + LABEL_CHUNK]
        user = log.user[j]
        pos = np.maximum(
            np.searchsorted(idx, j, side="right"),
            np.searchsorted(key, user * (1 << 34) + (not_before[lo : lo + LABEL_CHUNK] - t0),
                            side="left"),
        )
        cand = idx[np.minimum(pos, len(idx) - 1)]
        hit = (pos < len(idx)) & (log.user[cand] == user)
        out[lo : lo + LABEL_CHUNK][hit] = log.ts[cand[hit]]
    return out


def purchase_labels(
    log: EventLog, horizon: int, known_until: int, at: np.ndarray | None = None,
    now: np.ndarray | None = None,
) -> np.ndarray:
    """1 if the user buys within [now, now + horizon] after event j, 0 if not, CENSORED if
    that horizon is not fully known; for the events `at` (default: every event), asked about
    at `now` (default: each event's own time; a later time is a request after an idle
    spell, and must not pass the user's next event)."""
    now = (log.ts if at is None else log.ts[at]) if now is None else now
    return _binary(_next_time_where(log, log.behavior == Behavior.BUY, at, now), now, horizon,
                   known_until)


def return_labels(
    log: EventLog, horizon: int, return_gap: int, known_until: int,
    at: np.ndarray | None = None, now: np.ndarray | None = None,
) -> np.ndarray:
    """1 if the user has an event in [now + return_gap, now + horizon], else 0 / CENSORED;
    for the events `at` (default: every event) asked about at `now` (as `purchase_labels`)."""
    now = (log.ts if at is None else log.ts[at]) if now is None else now
    nxt = _next_time_where(log, np.ones(len(log), dtype=bool), at, now + return_gap)
    return _binary(nxt, now, horizon, known_until)


def _binary(next_ts: np.ndarray, ts: np.ndarray, horizon: int, known_until: int) -> np.ndarray:
    """Censor every point whose horizon is not fully observed, fired or not: keeping the early
    positives near the end of what is known (and dropping only the unfired) would leave the
    last horizon of the log nearly all positive and bias the head and its metrics upwards."""
    labels = (next_ts <= ts + horizon).astype(np.int8)
    labels[ts + horizon > known_until] = CENSORED
    return labels


@dataclass(frozen=True)
class Points:
    """Prediction points: the window of point k is events[start[k] : last[k] + 1], asked
    about at time now[k] (its last event's time, or later: a request after an idle spell,
    before the target event); its target event is last[k] + 1. Labels are per point, their
    horizon counted from now."""

    start: np.ndarray  # (n,) first event of each window
    last: np.ndarray  # (n,) last event of each window, the one predicted from
    purchase: np.ndarray  # (n,) int8 label, CENSORED where its horizon is not observed
    returns: np.ndarray  # (n,) likewise
    now: np.ndarray  # (n,) int64 unix seconds: when the point is asked about

    def __len__(self) -> int:
        return len(self.last)

    @property
    def target(self) -> np.ndarray:
        return self.last + 1

    @property
    def length(self) -> np.ndarray:
        return self.last - self.start + 1

    def take(self, index: np.ndarray | slice) -> Points:
        return Points(self.start[index], self.last[index], self.purchase[index],
                      self.returns[index], self.now[index])

    def window_rows(self) -> WindowRows:
        """The events of the points' windows, flattened (what scoring a chunk reads)."""
        return window_rows(self.start, self.length)

    def sample(self, n: int, seed: int) -> Points:
        """A seeded subset of n points (all of them when there are fewer), in their order."""
        if len(self) <= n:
            return self
        return self.take(np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False)))


def prediction_points(
    log: EventLog,
    window_len: int,
    horizon: int,
    return_gap: int,
    *,
    target_from: int,
    target_until: int,
    known_until: int,
) -> Points:
    """Every event with target_from <= ts < target_until that has an earlier event of its
    user becomes a point, predicted from the (up to) window_len events before it."""
    pos = log.position_in_user()
    is_target = (pos > 0) & (log.ts >= target_from) & (log.ts < target_until)
    target = np.flatnonzero(is_target)
    last = target - 1
    start = last - np.minimum(pos[last], window_len - 1)
    purchase = purchase_labels(log, horizon, known_until, last)
    returns = return_labels(log, horizon, return_gap, known_until, last)
    return Points(start=start, last=last, purchase=purchase, returns=returns, now=log.ts[last])


def later_points(
    log: EventLog, points: Points, horizon: int, return_gap: int, known_until: int, seed: int
) -> Points:
    """The same windows asked about at a random later time: now drawn uniformly (seeded)
    from each point's last event up to (not at) its target event, the labels counted from there.
    What a storefront asks about a shopper who has been idle for a while."""
    lo, hi = log.ts[points.last], log.ts[points.target]
    now = lo + np.floor(np.random.default_rng(seed).random(len(points)) * (hi - lo)).astype(
        np.int64)
    return Points(
        start=points.start,
        last=points.last,
        purchase=purchase_labels(log, horizon, known_until, points.last, now),
        returns=return_labels(log, horizon, return_gap, known_until, points.last, now),
        now=now,
    )


def test_points(
    log: EventLog, split: TimeSplit, window_len: int, horizon: int, return_gap: int
) -> Points:
    """The evaluation points: every event from the test cutoff on, predicted from all that
    came before it (the training period included), labels known up to the log's end."""
    return prediction_points(
        log,
        window_len,
        horizon,
        return_gap,
        target_from=split.test_cutoff,
        target_until=split.end + 1,
        known_until=split.end,
    )


def validation_points(
    log: EventLog, split: TimeSplit, window_len: int, horizon: int, return_gap: int
) -> tuple[EventLog, Points]:
    """Early-stopping and calibration points: targets in [val_cutoff, test_cutoff), with
    labels censored at the test cutoff so nothing from the test period leaks in. The points
    index into the returned log (the events before the test cutoff)."""
    before_test = log.take(log.ts < split.test_cutoff)
    points = prediction_points(
        before_test,
        window_len,
        horizon,
        return_gap,
        target_from=split.val_cutoff,
        target_until=split.test_cutoff,
        known_until=split.test_cutoff - 1,
    )
    return before_test, points
