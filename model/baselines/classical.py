"""The counting baselines, Popularity, Markov and Last: statistics of the training period,
nothing fitted by gradient. An item or category never seen before the test cutoff scores
-inf (it cannot rank); Last ranks the window's own ones first even so.

Each scores a code by its popularity except for a few codes per point (Markov: the last
code's successors; Last: the window's codes), so its targets are ranked exactly by
`model.evaluation.ranking.rank_fixed` against the popularity sorted once, in memory
independent of the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.baselines.training_data import TrainingData
from model.evaluation.protocol import Ranked, Scores
from model.evaluation.ranking import Cells, FixedScores, rank_fixed
from model.features import N_BEHAVIORS
from model.sequences import CENSORED, EventLog, Points, window_rows

NEVER = -np.inf


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


def _popularity(codes: np.ndarray, size: int) -> FixedScores:
    """Scores in [0, 1): share of training events, -inf for codes never seen."""
    counts = np.bincount(codes, minlength=size).astype(np.float64)
    share = counts / (counts.sum() + 1.0)
    return FixedScores(np.where(counts > 0, share, NEVER))


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
            category=rank_fixed(self.categories, Cells.empty(), log.category[points.target]),
            item=rank_fixed(self.items, Cells.empty(), log.item[points.target]),
        )


@dataclass(frozen=True)
class Transitions:
    """Sparse transition counts prev -> next in CSR form (rows = prev codes, each row's
    next codes increasing)."""

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray

    @classmethod
    def count(cls, prev: np.ndarray, nxt: np.ndarray, size: int) -> Transitions:
        pair, counts = np.unique(prev.astype(np.int64) * size + nxt, return_counts=True)
        rows = pair // size
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=size))))
        return cls(indptr=indptr, indices=pair % size, counts=counts.astype(np.float64))

    def cells(self, codes: np.ndarray, popularity: FixedScores) -> Cells:
        """Point k's successors of codes[k], each scored its count plus its popularity."""
        lo, hi = self.indptr[codes], self.indptr[codes + 1]
        stored = window_rows(lo, hi - lo)  # each row's stored entries, row after row
        nxt = self.indices[stored.events]
        return Cells.highest(
            stored.window, nxt, self.counts[stored.events] + popularity.values[nxt]
        )


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
        target = points.target

        def ranked(nxt: Transitions, pop: FixedScores, codes: np.ndarray) -> Ranked:
            return rank_fixed(pop, nxt.cells(codes[points.last], pop), codes[target])

        return Scores(
            behavior=self.behavior[last_b],
            purchase=self.purchase[last_b],
            returns=self.returns[last_b],
            category=ranked(self.category_next, self.category_pop, log.category),
            item=ranked(self.item_next, self.item_pop, log.item),
        )


def _recent_first(popularity: FixedScores, codes: np.ndarray, points: Points) -> Ranked:
    """Popularity with the window's own codes moved to the top, most recent first (a code
    of the window ranks even if the training period never saw it)."""
    top = 1.0 + float(np.max(popularity.values, initial=0.0))
    windows = points.window_rows()
    cells = Cells.highest(windows.window, codes[windows.events], top + windows.offset)
    return rank_fixed(popularity, cells, codes[points.target])


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
