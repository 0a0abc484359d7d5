"""Baselines, scored on exactly the Transformer's prediction points.

Each baseline is fitted on the events before the test cutoff (what the Transformer may
see while training) and then answers, for a chunk of `model.sequences.Points` of the full
log, the same heads as the network: next-behavior probabilities, purchase and return
probabilities, and next-item / next-category scores over the log's item / category CODES
(`EventLog.item`, `EventLog.category`). An item or category the baseline never saw scores
-inf: it cannot rank, exactly like an id outside the model's vocabulary. A baseline without
an answer for a head leaves it None and the evaluator omits the head.

    popularity  behavior priors, purchase / return base rates, most popular items/categories
    markov      first-order transitions from the last event, popularity back-off
    last        repeat the last behavior; the window's categories / items most recent
                first, popularity for the rest
    lightgbm    gradient-boosted trees on recency/frequency features (behavior, purchase)
    gru         the network's GRU encoder with the same embeddings and heads: trained with
                `model.train.fit(encoder="gru")`, exported and scored through ONNX Runtime
                like the Transformer (see `model.evaluate`)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from model.features import Behavior
from model.sequences import (
    CENSORED,
    EventLog,
    Points,
    TimeSplit,
    prediction_points,
    purchase_labels,
    return_labels,
)

logger = logging.getLogger(__name__)

N_BEHAVIORS = len(Behavior)
NEVER = -np.inf


@dataclass(frozen=True)
class Scores:
    """A scorer's answers for n points; None where it has no answer for a head."""

    behavior: np.ndarray | None = None  # (n, 4) probabilities, Behavior order
    purchase: np.ndarray | None = None  # (n,) P(purchase within the horizon)
    returns: np.ndarray | None = None  # (n,) P(return within the horizon)
    category: np.ndarray | None = None  # (n, n_categories) scores, -inf = cannot rank
    item: np.ndarray | None = None  # (n, n_items) scores, -inf = cannot rank


class Scorer(Protocol):
    """Anything the evaluator can score: answers a chunk of points of a log."""

    def score(self, log: EventLog, points: Points) -> Scores: ...


@dataclass(frozen=True)
class Horizon:
    """The label parameters of the model being compared (from its manifest)."""

    window_len: int
    horizon: int
    return_gap: int
    tz_offset_seconds: int = 0


@dataclass(frozen=True)
class TrainingData:
    """What every baseline is fitted on: the log before the test cutoff, its transitions
    (consecutive events of a user) and its labels, censored at the test cutoff."""

    log: EventLog
    prev: np.ndarray  # index of the earlier event of each transition
    next: np.ndarray  # index of the later event
    purchase: np.ndarray  # per event, CENSORED where unknown at the test cutoff
    returns: np.ndarray
    n_items: int
    n_categories: int

    @classmethod
    def build(cls, log: EventLog, split: TimeSplit, h: Horizon) -> TrainingData:
        train = log.take(log.ts < split.test_cutoff)
        known_until = split.test_cutoff - 1
        nxt = np.flatnonzero(train.position_in_user() > 0)
        return cls(
            log=train,
            prev=nxt - 1,
            next=nxt,
            purchase=purchase_labels(train, h.horizon, known_until),
            returns=return_labels(train, h.horizon, h.return_gap, known_until),
            n_items=len(log.item_ids),
            n_categories=len(log.category_ids),
        )


def _rate(labels: np.ndarray) -> float:
    known = labels != CENSORED
    return float(labels[known].mean()) if known.any() else 0.5


def _rate_by(labels: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of the known labels per group, shrunk toward the overall rate by one pseudo-count."""
    known = labels != CENSORED
    overall = _rate(labels)
    hits = np.bincount(group[known], weights=labels[known], minlength=n_groups)
    counts = np.bincount(group[known], minlength=n_groups)
    return np.asarray((hits + overall) / (counts + 1.0))


def _popularity(codes: np.ndarray, size: int) -> np.ndarray:
    """Scores in [0, 1): share of training events, -inf for codes never seen."""
    counts = np.bincount(codes, minlength=size).astype(np.float64)
    share = counts / (counts.sum() + 1.0)
    return np.where(counts > 0, share, NEVER)


def _behavior_prior(data: TrainingData) -> np.ndarray:
    counts = np.bincount(data.log.behavior[data.next], minlength=N_BEHAVIORS) + 1.0
    return counts / counts.sum()


class Popularity:
    """The same answer for everyone: what the training period did most often."""

    def __init__(self, data: TrainingData) -> None:
        self.behavior = _behavior_prior(data)
        self.purchase = _rate(data.purchase)
        self.returns = _rate(data.returns)
        self.items = _popularity(data.log.item, data.n_items)
        self.categories = _popularity(data.log.category, data.n_categories)

    def score(self, log: EventLog, points: Points) -> Scores:
        n = len(points)
        return Scores(
            behavior=np.tile(self.behavior, (n, 1)),
            purchase=np.full(n, self.purchase),
            returns=np.full(n, self.returns),
            category=np.tile(self.categories, (n, 1)),
            item=np.tile(self.items, (n, 1)),
        )


@dataclass(frozen=True)
class Transitions:
    """Sparse transition counts prev -> next in CSR form (rows = prev codes)."""

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    width: int

    @classmethod
    def count(cls, prev: np.ndarray, nxt: np.ndarray, size: int) -> Transitions:
        pair, counts = np.unique(prev.astype(np.int64) * size + nxt, return_counts=True)
        rows = pair // size
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=size))))
        return cls(indptr=indptr, indices=pair % size, counts=counts.astype(np.float64), width=size)

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Dense (len(codes), width) counts of the given rows."""
        out = np.zeros((len(codes), self.width))
        lo, hi = self.indptr[codes], self.indptr[codes + 1]
        lengths = hi - lo
        row = np.repeat(np.arange(len(codes)), lengths)
        src = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        out[row, self.indices[src]] = self.counts[src]
        return out


class Markov:
    """First-order Markov chain on the last event.

    Behavior: P(next | last behavior), add-one smoothed. Purchase / return: the rate after
    events of the last event's behavior. Category and item: transition counts from the last
    category / item plus the popularity share (in [0, 1)): transitions rank first, popularity
    orders the rest and everything after an id never seen as a predecessor.
    """

    def __init__(self, data: TrainingData) -> None:
        b = data.log.behavior.astype(np.int64)
        counts = np.ones((N_BEHAVIORS, N_BEHAVIORS))
        np.add.at(counts, (b[data.prev], b[data.next]), 1.0)
        self.behavior = counts / counts.sum(axis=1, keepdims=True)
        self.purchase = _rate_by(data.purchase, b, N_BEHAVIORS)
        self.returns = _rate_by(data.returns, b, N_BEHAVIORS)
        self.item_pop = _popularity(data.log.item, data.n_items)
        self.category_pop = _popularity(data.log.category, data.n_categories)
        item, category = data.log.item, data.log.category
        self.item_next = Transitions.count(item[data.prev], item[data.next], data.n_items)
        self.category_next = Transitions.count(
            category[data.prev], category[data.next], data.n_categories
        )

    def score(self, log: EventLog, points: Points) -> Scores:
        last_b = log.behavior[points.last].astype(np.int64)
        return Scores(
            behavior=self.behavior[last_b],
            purchase=self.purchase[last_b],
            returns=self.returns[last_b],
            category=self.category_next.rows(log.category[points.last]) + self.category_pop,
            item=self.item_next.rows(log.item[points.last]) + self.item_pop,
        )


def _recent_first(popularity: np.ndarray, codes: np.ndarray, points: Points) -> np.ndarray:
    """Popularity rows with the window's own codes moved to the top, most recent first
    (a code of the window ranks even if the training period never saw it)."""
    out = np.tile(popularity, (len(points), 1))
    top = 1.0 + float(np.max(popularity, initial=0.0))
    lengths = points.length
    row = np.repeat(np.arange(len(points)), lengths)
    offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    event = np.repeat(points.start, lengths) + offset
    np.maximum.at(out, (row, codes[event]), top + offset)
    return out


class Last:
    """Repeat the last event.

    Behavior: the last behavior with the probability r that the next event repeats it (r
    measured on the training transitions, at least 1/2 so that the last behavior is always
    the most likely), the rest spread as the behavior prior. Category
    and item: the window's own categories / items, the last one first and then back in time
    (a repeat of an earlier one is as much a "repeat" as of the very last), then the rest by
    popularity. No purchase or return answer.
    """

    def __init__(self, data: TrainingData) -> None:
        b = data.log.behavior
        repeat = float(np.mean(b[data.prev] == b[data.next])) if len(data.prev) else 0.0
        self.repeat = max(repeat, 0.5)
        self.prior = _behavior_prior(data)
        self.item_pop = _popularity(data.log.item, data.n_items)
        self.category_pop = _popularity(data.log.category, data.n_categories)

    def score(self, log: EventLog, points: Points) -> Scores:
        last_b = log.behavior[points.last].astype(np.int64)
        behavior = (1 - self.repeat) * np.tile(self.prior, (len(points), 1))
        behavior[np.arange(len(points)), last_b] += self.repeat
        return Scores(
            behavior=behavior,
            category=_recent_first(self.category_pop, log.category, points),
            item=_recent_first(self.item_pop, log.item, points),
        )


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
        onehot = np.zeros((n + 1, N_BEHAVIORS))
        onehot[idx + 1, b] = 1.0
        self.cum = np.cumsum(onehot, axis=0)  # cum[i] = counts over events [0, i)
        t0 = int(ts.min()) if n else 0
        self._key = log.user * (1 << 34) + (ts - t0)
        self._t0 = t0
        self.last_of = np.stack(
            [np.maximum.accumulate(np.where(b == k, idx, -1)) for k in range(N_BEHAVIORS)],
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


LIGHTGBM_PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    # One thread: OpenMP threads spin-wait, and on a shared or busy machine two of them made
    # fitting ten times slower than one (measured: 41 s vs 3 s on 67k points).
    "num_threads": 1,
    "verbose": -1,
}


class LightGBM:
    """Gradient-boosted trees on `RecencyFeatures`: multiclass next behavior and binary
    purchase. Trained on every prediction point before the test cutoff (subsampled to
    max_points); the points of the validation period are held out for early stopping."""

    def __init__(
        self,
        data: TrainingData,
        h: Horizon,
        split: TimeSplit,
        *,
        max_points: int = 300_000,
        n_rounds: int = 400,
        seed: int = 0,
    ) -> None:
        import lightgbm as lgb

        train = data.log
        points = prediction_points(
            train,
            h.window_len,
            h.horizon,
            h.return_gap,
            target_from=int(train.ts.min()),
            target_until=split.test_cutoff,
            known_until=split.test_cutoff - 1,
        )
        points = points.sample(max_points, seed)
        x = RecencyFeatures(train, h.tz_offset_seconds)(points)
        late = train.ts[points.target] >= split.val_cutoff
        params = {**LIGHTGBM_PARAMS, "seed": seed}
        categorical = [FEATURE_NAMES.index("last_behavior")]

        def fit(objective: dict[str, object], rows: np.ndarray, y: np.ndarray) -> lgb.Booster:
            hold = late[rows] if late[rows].any() and not late[rows].all() else None
            fit_rows = rows if hold is None else rows[~hold]
            train_set = lgb.Dataset(
                x[fit_rows],
                y if hold is None else y[~hold],
                feature_name=list(FEATURE_NAMES),
                categorical_feature=categorical,
                free_raw_data=False,
            )
            valid = (
                [] if hold is None else [lgb.Dataset(x[rows[hold]], y[hold], reference=train_set)]
            )
            callbacks: list[Callable[..., Any]] = (
                [lgb.early_stopping(30, verbose=False)] if valid else []
            )
            return lgb.train(
                {**params, **objective},
                train_set,
                num_boost_round=n_rounds,
                valid_sets=valid,
                callbacks=callbacks,
            )

        all_rows = np.arange(len(points))
        next_behavior = train.behavior[points.target].astype(np.int64)
        self.behavior_model = fit(
            {"objective": "multiclass", "num_class": N_BEHAVIORS}, all_rows, next_behavior
        )
        known = np.flatnonzero(points.purchase != CENSORED)
        labels = points.purchase[known].astype(np.int64)
        # A log shorter than the horizon censors every purchase label, and trees cannot be
        # grown on one class: then the baseline has no purchase answer (the column is "—").
        self.purchase_model = (
            fit({"objective": "binary"}, known, labels) if len(np.unique(labels)) == 2 else None
        )
        self.tz_offset_seconds = h.tz_offset_seconds
        self._features: tuple[EventLog, RecencyFeatures] | None = None
        logger.info(
            "lightgbm: %d training points, %d + %d trees",
            len(points),
            self.behavior_model.current_iteration(),
            0 if self.purchase_model is None else self.purchase_model.current_iteration(),
        )

    def score(self, log: EventLog, points: Points) -> Scores:
        if self._features is None or self._features[0] is not log:
            self._features = (log, RecencyFeatures(log, self.tz_offset_seconds))
        x = self._features[1](points)
        purchase = self.purchase_model
        return Scores(
            behavior=np.asarray(self.behavior_model.predict(x)),
            purchase=None if purchase is None else np.asarray(purchase.predict(x)),
        )


CLASSICAL = ("popularity", "markov", "last", "lightgbm")


def fit_classical(
    names: list[str], log: EventLog, split: TimeSplit, h: Horizon
) -> dict[str, Scorer]:
    """Fit the named non-neural baselines on the events before split.test_cutoff."""
    unknown = sorted(set(names) - set(CLASSICAL))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; these need no network: {CLASSICAL}")
    data = TrainingData.build(log, split, h)
    scorers: dict[str, Scorer] = {}
    for name in names:
        logger.info("fitting baseline %s on %d events", name, len(data.log))
        if name == "popularity":
            scorers[name] = Popularity(data)
        elif name == "markov":
            scorers[name] = Markov(data)
        elif name == "last":
            scorers[name] = Last(data)
        else:
            scorers[name] = LightGBM(data, h, split)
    return scorers
