"""Hand-built recency / frequency features of a prediction point, for the tree baseline.

Counts of each behavior in the window and the last hour / day, time since each behavior,
how often the last item / category was touched, the session so far and the local clock:
the signals a shop's analyst would start from, computed from the user's past events only.
"""

from __future__ import annotations

import numpy as np

from model.features import Behavior
from model.sequences import EventLog, Points

HOUR = 3600
DAY = 86400
SESSION_GAP = 1800

FEATURE_NAMES = (
    "window_len",
    "history_len",
    *(f"window_{b.name.lower()}" for b in Behavior),
    *(f"hour_{b.name.lower()}" for b in Behavior),
    *(f"day_{b.name.lower()}" for b in Behavior),
    "last_behavior",
    "gap_before_last",
    *(f"since_{b.name.lower()}" for b in Behavior),
    "last_item_touches",
    "last_item_carted",
    "last_item_faved",
    "last_category_touches",
    "session_events",
    "session_seconds",
    "hour_of_day",
    "weekday",
)


def _within_group_cumsum(keys: tuple[np.ndarray, ...], values: np.ndarray) -> np.ndarray:
    """For each event, the sum of values over the events of its (user, key) group up to and
    including it (the log is in time order within a user)."""
    order = np.lexsort((np.arange(len(values)), *reversed(keys)))
    sorted_keys = [k[order] for k in keys]
    new = np.ones(len(values), dtype=bool)
    new[1:] = np.any([k[1:] != k[:-1] for k in sorted_keys], axis=0)
    csum = np.cumsum(values[order])
    base = np.maximum.accumulate(np.where(new, np.arange(len(values)), 0))
    before = np.where(base > 0, csum[base - 1], 0)
    out = np.empty(len(values), dtype=np.float64)
    out[order] = csum - before
    return out


class RecencyFeatures:
    """Hand-built recency / frequency features of a point, from its user's past events only.

    Computed once per log in O(events) prefix arrays; a point's features are lookups at its
    last event (and its window start for the window counts).
    """

    def __init__(self, log: EventLog, tz_offset_seconds: int = 0) -> None:
        n = len(log)
        self.log = log
        ts = log.ts
        b = log.behavior.astype(np.int64)
        idx = np.arange(n)
        starts, ends = log.user_bounds()
        self.user_start = np.repeat(starts, ends - starts)
        onehot = np.zeros((n + 1, len(Behavior)))
        onehot[idx + 1, b] = 1.0
        self.cum = np.cumsum(onehot, axis=0)  # cum[i] = counts over events [0, i)
        t0 = int(ts.min()) if n else 0
        self._key = log.user * (1 << 34) + (ts - t0)
        self._t0 = t0
        self.last_of = np.stack(
            [np.maximum.accumulate(np.where(b == k, idx, -1)) for k in range(len(Behavior))],
            axis=1,
        )  # (n, 4) index of the latest event of behavior k at or before each event
        ones = np.ones(n)
        self.item_touches = _within_group_cumsum((log.user, log.item), ones)
        self.item_carted = _within_group_cumsum((log.user, log.item), (b == Behavior.CART) * 1.0)
        self.item_faved = _within_group_cumsum((log.user, log.item), (b == Behavior.FAV) * 1.0)
        self.category_touches = _within_group_cumsum((log.user, log.category), ones)
        gap = np.diff(ts, prepend=ts[:1]) if n else ts
        new_session = (idx == self.user_start) | (gap > SESSION_GAP)
        self.session_start = np.maximum.accumulate(np.where(new_session, idx, 0))
        self.gap = np.where(idx == self.user_start, np.nan, gap.astype(np.float64))
        local = ts + tz_offset_seconds
        self.hour = (local // HOUR) % 24
        self.weekday = (local // DAY + 3) % 7

    def _first_since(self, last: np.ndarray, seconds: int) -> np.ndarray:
        """Index of the user's first event with ts >= ts[last] - seconds."""
        log = self.log
        wanted = log.user[last] * (1 << 34) + (log.ts[last] - seconds - self._t0)
        return np.maximum(np.searchsorted(self._key, wanted, side="left"), self.user_start[last])

    def __call__(self, points: Points) -> np.ndarray:
        last, start = points.last, points.start
        ts = self.log.ts
        since = np.where(
            self.last_of[last] >= self.user_start[last, None],
            ts[last, None] - ts[np.maximum(self.last_of[last], 0)],
            np.nan,
        )
        cum = self.cum
        columns = [
            (last - start + 1)[:, None],
            (last - self.user_start[last] + 1)[:, None],
            cum[last + 1] - cum[start],
            cum[last + 1] - cum[self._first_since(last, HOUR)],
            cum[last + 1] - cum[self._first_since(last, DAY)],
            self.log.behavior[last][:, None],
            self.gap[last][:, None],
            since,
            self.item_touches[last][:, None],
            (self.item_carted[last] > 0)[:, None],
            (self.item_faved[last] > 0)[:, None],
            self.category_touches[last][:, None],
            (last - self.session_start[last] + 1)[:, None],
            (ts[last] - ts[self.session_start[last]])[:, None],
            self.hour[last][:, None],
            self.weekday[last][:, None],
        ]
        return np.concatenate([np.asarray(c, dtype=np.float64) for c in columns], axis=1)

