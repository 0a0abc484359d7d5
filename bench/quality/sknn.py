"""V-SkNN: session-based k-nearest-neighbours (Ludewig & Jannach, "Evaluation of session-based
recommendation algorithms", 2018), in NumPy and scipy.sparse.

Sessions are a user's runs of events with no gap above `session_gap` seconds. For a
prediction point, the current session is the window's last session; its items are weighted
linearly by recency (the last event 1, the first 1/len). Candidate neighbours are the
`sample_size` most recent memory sessions sharing an item with it; the `k` most similar
(similarity = the summed recency weights of the shared items) vote for their items, each vote
weighted by the similarity and by the item's inverse session frequency (V-SkNN's "div"
idf weighting). Items the memory never saw score -inf (a miss); a tiny popularity term
breaks the ties between the remaining items, so a point without neighbours gets the
popularity ranking rather than a random one. Next-category scores are the item scores
summed per category.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from model.evaluation.ranking import matrix_scores, rank_dense
from model.metrics import RankingMetrics
from model.sequences import EventLog, Points

SESSION_GAP_SECONDS = 30 * 60
POPULARITY_WEIGHT = 1e-6


@dataclass(frozen=True)
class SknnConfig:
    k: int = 100
    sample_size: int = 1000
    session_gap: int = SESSION_GAP_SECONDS
    idf: bool = True


def session_ids(log: EventLog, session_gap: int) -> np.ndarray:
    """Session number of each event (0, 1, ... in log order): a new session starts at each
    user's first event and after every gap above session_gap seconds."""
    if len(log) == 0:
        return np.zeros(0, dtype=np.int64)
    new_user = np.concatenate(([True], log.user[1:] != log.user[:-1]))
    long_gap = np.concatenate(([True], np.diff(log.ts) > session_gap))
    return np.cumsum(new_user | long_gap) - 1


class SessionKNN:
    """V-SkNN over a memory of sessions; `fit` once, then `scores` for batches of windows."""

    def __init__(self, n_items: int, cfg: SknnConfig = SknnConfig()) -> None:
        self.n_items = n_items
        self.cfg = cfg

    def fit(self, log: EventLog) -> SessionKNN:
        """Memorize the sessions of `log` (item codes < n_items)."""
        sess = session_ids(log, self.cfg.session_gap)
        n_sessions = int(sess.max()) + 1 if len(sess) else 0
        # Number sessions by their last event time, so "most recent" is "largest index".
        last_ts = np.full(n_sessions, np.iinfo(np.int64).min)
        np.maximum.at(last_ts, sess, log.ts)
        rank = np.empty(n_sessions, dtype=np.int64)
        rank[np.argsort(last_ts, kind="stable")] = np.arange(n_sessions)
        incidence = sp.csr_matrix(
            (np.ones(len(log), dtype=np.float32), (rank[sess], log.item)),
            shape=(n_sessions, self.n_items),
        )
        incidence.sum_duplicates()
        incidence.data[:] = 1.0
        self.sessions = incidence  # (S, I) binary
        self.session_freq = np.asarray(incidence.sum(axis=0)).ravel()  # sessions per item
        seen = self.session_freq > 0
        self.idf = np.where(seen, np.log(max(n_sessions, 1) / np.maximum(self.session_freq, 1)), 0)
        self.idf = self.idf + 1.0 if self.cfg.idf else np.ones(self.n_items)
        item_count = np.bincount(log.item, minlength=self.n_items).astype(np.float64)
        popularity = item_count / max(item_count.max(), 1)
        self.prior = np.where(seen, POPULARITY_WEIGHT * popularity, -np.inf)
        return self

    def _query(
        self, log: EventLog, sess: np.ndarray, points: Points, rows: np.ndarray
    ) -> sp.csr_matrix:
        """(len(rows), I) recency weights of each point's current-session items."""
        data, cols, indptr = [], [], [0]
        for k in rows:
            lo, hi = int(points.start[k]), int(points.last[k]) + 1
            current = lo + int(np.searchsorted(sess[lo:hi], sess[hi - 1], side="left"))
            items = log.item[current:hi]
            weights = np.arange(1, len(items) + 1, dtype=np.float64) / len(items)
            # An item seen several times keeps its most recent (largest) weight.
            uniq, where = np.unique(items[::-1], return_index=True)
            data.append(weights[::-1][where])
            cols.append(uniq)
            indptr.append(indptr[-1] + len(uniq))
        return sp.csr_matrix(
            (np.concatenate(data), np.concatenate(cols), np.asarray(indptr)),
            shape=(len(rows), self.n_items),
        )

    def scores(
        self, log: EventLog, sess: np.ndarray, points: Points, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows), n_items) item scores of the points `rows` of `log`; -inf for unseen
        items. sess is `session_ids(log, cfg.session_gap)`."""
        query = self._query(log, sess, points, rows)
        sim = (query @ self.sessions.T).tocsr()  # (B, S) shared recency weight
        data, cols, indptr = [], [], [0]
        for b in range(len(rows)):
            cand = sim.indices[sim.indptr[b] : sim.indptr[b + 1]]
            vals = sim.data[sim.indptr[b] : sim.indptr[b + 1]]
            recent = np.argsort(-cand, kind="stable")[: self.cfg.sample_size]
            cand, vals = cand[recent], vals[recent]
            top = np.argsort(-vals, kind="stable")[: self.cfg.k]
            data.append(vals[top])
            cols.append(cand[top])
            indptr.append(indptr[-1] + len(top))
        neighbours = sp.csr_matrix(
            (np.concatenate(data), np.concatenate(cols), np.asarray(indptr)),
            shape=(len(rows), self.sessions.shape[0]),
        )
        votes = np.asarray((neighbours @ self.sessions).todense())  # (B, I)
        return votes * self.idf[None, :] + self.prior[None, :]


def evaluate_sknn(
    train: EventLog,
    log: EventLog,
    points: Points,
    item_category: np.ndarray,
    n_categories: int,
    cfg: SknnConfig = SknnConfig(),
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, dict[str, float | int]]:
    """Fit on `train`'s sessions, score `points` of `log`: next item and next category.

    item_category[i] is the category code of item code i (-1 where unknown)."""
    n_items = len(log.item_ids)
    knn = SessionKNN(n_items, cfg).fit(train)
    sess = session_ids(log, cfg.session_gap)
    member = (item_category >= 0) & np.isfinite(knn.prior)  # items that can score
    in_category = sp.csr_matrix(
        (np.ones(int(member.sum())), (item_category[member], np.flatnonzero(member))),
        shape=(n_categories, n_items),
    )  # (C, I)
    cat_has_item = np.zeros(n_categories, dtype=bool)
    cat_has_item[item_category[member]] = True
    items, categories = RankingMetrics(), RankingMetrics()
    started = time.perf_counter()
    for lo in range(0, len(points), batch_size):
        rows = np.arange(lo, min(lo + batch_size, len(points)))
        scores = knn.scores(log, sess, points, rows)
        items.update(rank_dense(matrix_scores(scores), log.item[points.target[rows]], n_items))
        cat_scores = (in_category @ np.where(member[None, :], scores, 0.0).T).T  # (B, C)
        cat_scores[:, ~cat_has_item] = -np.inf
        categories.update(rank_dense(matrix_scores(cat_scores), log.category[points.target[rows]],
                                     n_categories))
        if progress:
            done = int(rows[-1]) + 1
            print(
                f"\r  sknn {done}/{len(points)} points ({time.perf_counter() - started:.0f}s)",
                end="" if done < len(points) else "\n",
                file=sys.stderr,
                flush=True,
            )
    return {"item": items.result(), "category": categories.result()}
