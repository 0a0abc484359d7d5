"""Evaluation metrics, in NumPy only, each checked against hand computations in the tests.

Binary heads: ROC AUC (ties count one half), average precision (PR AUC), log loss, expected
calibration error with its reliability bins. Next behavior: accuracy, macro F1, one-vs-rest
AUC per class and their mean, confusion matrix. Next item / category: Recall@K and NDCG@K by
full ranking, accumulated chunk by chunk so that no (points x items) matrix is ever built
for all points at once.

Ranking ties are resolved by expectation: a target whose score ties with t other items and
is beaten by g items takes each rank g+1 .. g+t+1 with equal probability, and the metrics are
the exact expectations over that draw. A model that scores every item the same therefore
gets the Recall@K of a random ranking, not a perfect one (the "1 + #strictly higher" rank
alone would reward ties) nor zero (a pessimistic rank would punish them beyond chance).
A target scored -inf (absent from the model's vocabulary) is a miss and counts as unseen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPS = 1e-7
N_CALIBRATION_BINS = 15


def _binary_inputs(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("binary labels must be 0 or 1 (drop censored points first)")
    return y, s


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of values, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundary = np.concatenate(([True], sorted_values[1:] != sorted_values[:-1], [True]))
    edges = np.flatnonzero(boundary)  # start of each run of equal values, then n
    run_mean = (edges[:-1] + edges[1:] + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(run_mean, np.diff(edges))
    return ranks


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting 1/2.

    NaN when only one class is present (the AUC is undefined there).
    """
    y, s = _binary_inputs(y_true, score)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as the step sum over distinct thresholds,
    sum_k (R_k - R_{k-1}) P_k (the usual "average precision"). NaN without positives."""
    y, s = _binary_inputs(y_true, score)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # The last index of each run of equal scores: one threshold per distinct score.
    last_of_run = np.flatnonzero(np.concatenate((s_sorted[1:] != s_sorted[:-1], [True])))
    tp = np.cumsum(y_sorted)[last_of_run]
    predicted = last_of_run + 1
    precision = tp / predicted
    recall = tp / n_pos
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def log_loss(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean negative log-likelihood. prob is (N,) P(y=1) for binary labels, or (N, K) class
    probabilities for labels 0..K-1. Probabilities are clipped to [EPS, 1 - EPS]."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(y_true).astype(np.int64).ravel()
    if len(y) == 0:
        return float("nan")
    if p.ndim == 1:
        y, p = _binary_inputs(y, p)
        p = np.clip(p, EPS, 1 - EPS)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
    if p.shape[0] != len(y):
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in length")
    picked = np.clip(p[np.arange(len(y)), y], EPS, 1.0)
    return float(-np.mean(np.log(picked)))


@dataclass(frozen=True)
class Reliability:
    """Equal-width confidence bins: what a reliability diagram plots, and the ECE."""

    ece: float
    edges: list[float]
    count: list[int]
    mean_confidence: list[float]  # NaN in empty bins
    mean_outcome: list[float]  # observed frequency (or accuracy); NaN in empty bins

    def to_dict(self) -> dict[str, object]:
        return {
            "ece": self.ece,
            "edges": self.edges,
            "count": self.count,
            "mean_confidence": [_json_float(v) for v in self.mean_confidence],
            "mean_outcome": [_json_float(v) for v in self.mean_outcome],
        }


def _json_float(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def reliability(
    confidence: np.ndarray, outcome: np.ndarray, n_bins: int = N_CALIBRATION_BINS
) -> Reliability:
    """ECE = sum_b (n_b / N) |mean outcome_b - mean confidence_b| over n_bins equal-width
    bins of [0, 1] (the last bin closed).

    For a binary head pass (P(y=1), y); for a classifier's top-label calibration pass
    (max probability, 1 if the argmax is right).
    """
    c = np.asarray(confidence, dtype=np.float64).ravel()
    o = np.asarray(outcome, dtype=np.float64).ravel()
    if c.shape != o.shape:
        raise ValueError(f"confidence {c.shape} and outcome {o.shape} differ in length")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=c, minlength=n_bins)
    out_sum = np.bincount(bins, weights=o, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = conf_sum / count
        mean_out = out_sum / count
    ece = float(np.abs(out_sum - conf_sum).sum() / len(c)) if len(c) else float("nan")
    return Reliability(
        ece=ece,
        edges=edges.tolist(),
        count=count.tolist(),
        mean_confidence=mean_conf.tolist(),
        mean_outcome=mean_out.tolist(),
    )


def expected_calibration_error(
    prob: np.ndarray, y_true: np.ndarray, n_bins: int = N_CALIBRATION_BINS
) -> float:
    """ECE of a binary probability against 0/1 labels (see `reliability`)."""
    return reliability(prob, y_true, n_bins).ece


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y = np.asarray(y_true).ravel()
    if len(y) == 0:
        return float("nan")
    return float(np.mean(y == np.asarray(y_pred).ravel()))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    y = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_pred).astype(np.int64).ravel()
    return np.bincount(y * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in y_true or y_pred
    (a class absent from both has no F1; one predicted but never true scores 0)."""
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1) + cm.sum(axis=0)  # (tp + fn) + (tp + fp)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(2 * tp[present] / support[present]))


def per_class_auc(y_true: np.ndarray, probs: np.ndarray) -> list[float]:
    """One-vs-rest ROC AUC of each class column (NaN for a class absent or universal)."""
    y = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(probs, dtype=np.float64)
    return [roc_auc(y == k, p[:, k]) for k in range(p.shape[1])]


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the classes where it is defined."""
    aucs = np.asarray(per_class_auc(y_true, probs))
    defined = ~np.isnan(aucs)
    return float(aucs[defined].mean()) if defined.any() else float("nan")


def _expected_hit(better: np.ndarray, ties: np.ndarray, k: int) -> np.ndarray:
    """P(rank <= k) when the rank is uniform on better+1 .. better+ties+1."""
    return np.clip((k - better) / (ties + 1.0), 0.0, 1.0)


def _expected_dcg(better: np.ndarray, ties: np.ndarray, k: int) -> np.ndarray:
    """E[1/log2(rank+1) if rank <= k] when the rank is uniform on better+1 .. better+ties+1."""
    gains = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))))  # gains[r]
    lo = np.clip(better, 0, k)  # ranks better+1.. ; gains up to rank lo already passed
    hi = np.clip(better + ties + 1, 0, k)
    return (gains[hi] - gains[lo]) / (ties + 1.0)


@dataclass
class RankingMetrics:
    """Streaming Recall@K and NDCG@K by full ranking, fed one chunk of points at a time.

    Each chunk is a (n, n_items) score matrix and the n target columns. A point's target is
    ranked against every column; -inf scores never rank, and a target scored -inf is a miss
    that also counts as unseen.
    """

    recall_k: int = 20
    ndcg_k: int = 10
    n: int = 0
    n_unseen: int = 0
    _recall_sum: float = 0.0
    _ndcg_sum: float = 0.0
    _rank_sum: float = field(default=0.0, repr=False)

    def update(self, scores: np.ndarray, targets: np.ndarray) -> None:
        scores = np.asarray(scores)
        targets = np.asarray(targets, dtype=np.int64)
        if scores.ndim != 2 or scores.shape[0] != len(targets):
            raise ValueError(f"scores {scores.shape} do not match {len(targets)} targets")
        rows = np.arange(len(targets))
        target_score = scores[rows, targets]
        seen = np.isfinite(target_score)
        s, ts = scores[seen], target_score[seen][:, None]
        better = (s > ts).sum(axis=1)
        ties = (s == ts).sum(axis=1) - 1  # the target itself is not a tie
        self.n += len(targets)
        self.n_unseen += int((~seen).sum())
        self._recall_sum += float(_expected_hit(better, ties, self.recall_k).sum())
        self._ndcg_sum += float(_expected_dcg(better, ties, self.ndcg_k).sum())
        self._rank_sum += float((better + ties / 2.0 + 1.0).sum())

    def result(self) -> dict[str, float | int]:
        n = max(self.n, 1)
        seen = self.n - self.n_unseen
        return {
            f"recall@{self.recall_k}": self._recall_sum / n if self.n else float("nan"),
            f"ndcg@{self.ndcg_k}": self._ndcg_sum / n if self.n else float("nan"),
            "unseen_rate": self.n_unseen / n if self.n else float("nan"),
            "mean_rank_seen": self._rank_sum / seen if seen else float("nan"),
            "n": self.n,
        }


def ranking_metrics(
    scores: np.ndarray, targets: np.ndarray, recall_k: int = 20, ndcg_k: int = 10
) -> dict[str, float | int]:
    """Recall@K / NDCG@K of one score matrix (small inputs; use RankingMetrics to stream)."""
    acc = RankingMetrics(recall_k=recall_k, ndcg_k=ndcg_k)
    acc.update(scores, targets)
    return acc.result()
