"""Evaluation metrics: scikit-learn's classification metrics with seqcast's conventions,
and the calibration and ranking metrics scikit-learn has no streaming form of.

Binary heads: ROC AUC (ties count one half), average precision (PR AUC), log loss, expected
calibration error with its reliability bins. Next behavior: accuracy, macro F1, one-vs-rest
AUC per class and their mean, confusion matrix. A metric that is undefined on its input (an
AUC with one class, anything on no points) is NaN, which the evaluator writes as null, where
scikit-learn would raise or warn. Next item / category: Recall@K and NDCG@K by full ranking,
accumulated chunk by chunk so that no (points x items) matrix is ever built for all points
at once.

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
from sklearn import metrics as sk

EPS = 1e-7
N_CALIBRATION_BINS = 15
NAN = float("nan")


def _binary_inputs(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("binary labels must be 0 or 1 (drop censored points first)")
    return y, s


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting 1/2.

    NaN when only one class is present (the AUC is undefined there).
    """
    y, s = _binary_inputs(y_true, score)
    if len(np.unique(y)) < 2:
        return NAN
    return float(sk.roc_auc_score(y, s))


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as the step sum over distinct thresholds,
    sum_k (R_k - R_{k-1}) P_k (the usual "average precision"). NaN without positives."""
    y, s = _binary_inputs(y_true, score)
    if not y.any():
        return NAN
    return float(sk.average_precision_score(y, s))


def log_loss(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean negative log-likelihood. prob is (N,) P(y=1) for binary labels, or (N, K) class
    probabilities for labels 0..K-1.

    Probabilities are clipped to [EPS, 1 - EPS] (binary) or at EPS from below (classes), so a
    confident wrong answer costs -log(EPS) ~ 16, not scikit-learn's float64 epsilon (~36).
    Class rows are then renormalized: the network's float32 softmax sums to one only within
    float32 rounding, which scikit-learn would warn about."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(y_true).astype(np.int64).ravel()
    if len(y) == 0:
        return NAN
    if p.ndim == 1:
        y, p = _binary_inputs(y, p)
        return float(sk.log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1]))
    if p.shape[0] != len(y):
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in length")
    p = np.clip(p, EPS, 1.0)
    return float(sk.log_loss(y, p / p.sum(axis=1, keepdims=True), labels=list(range(p.shape[1]))))


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
    ece = float(np.abs(out_sum - conf_sum).sum() / len(c)) if len(c) else NAN
    return Reliability(
        ece=ece,
        edges=edges.tolist(),
        count=count.tolist(),
        mean_confidence=mean_conf.tolist(),
        mean_outcome=mean_out.tolist(),
    )


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y = np.asarray(y_true).ravel()
    if len(y) == 0:
        return NAN
    return float(sk.accuracy_score(y, np.asarray(y_pred).ravel()))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    return np.asarray(sk.confusion_matrix(
        np.asarray(y_true).astype(np.int64).ravel(),
        np.asarray(y_pred).astype(np.int64).ravel(),
        labels=list(range(n_classes)),
    ))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in y_true or y_pred
    (a class absent from both has no F1; one predicted but never true scores 0)."""
    y = np.asarray(y_true).astype(np.int64).ravel()
    if len(y) == 0:
        return NAN
    pred = np.asarray(y_pred).astype(np.int64).ravel()
    return float(sk.f1_score(y, pred, average="macro", zero_division=0.0))


def per_class_auc(y_true: np.ndarray, probs: np.ndarray) -> list[float]:
    """One-vs-rest ROC AUC of each class column (NaN for a class absent or universal)."""
    y = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(probs, dtype=np.float64)
    return [roc_auc(y == k, p[:, k]) for k in range(p.shape[1])]


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the classes where it is defined."""
    aucs = np.asarray(per_class_auc(y_true, probs))
    defined = ~np.isnan(aucs)
    return float(aucs[defined].mean()) if defined.any() else NAN


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
        target_score = scores[np.arange(len(targets)), targets][:, None]
        better = (scores > target_score).sum(axis=1)
        ties = (scores == target_score).sum(axis=1) - 1  # the target itself is not a tie
        self.update_ranked(better, ties, np.isfinite(target_score[:, 0]))

    def update_ranked(self, better: np.ndarray, ties: np.ndarray, seen: np.ndarray) -> None:
        """A chunk already ranked (`model.evaluation.protocol.Ranked`): per point, the codes
        scored above the target, those tied with it, and whether it was rankable at all."""
        b, t = better[seen].astype(np.int64), ties[seen].astype(np.int64)
        self.n += len(seen)
        self.n_unseen += int((~seen).sum())
        self._recall_sum += float(_expected_hit(b, t, self.recall_k).sum())
        self._ndcg_sum += float(_expected_dcg(b, t, self.ndcg_k).sum())
        self._rank_sum += float((b + t / 2.0 + 1.0).sum())

    def result(self) -> dict[str, float | int]:
        n = max(self.n, 1)
        seen = self.n - self.n_unseen
        return {
            f"recall@{self.recall_k}": self._recall_sum / n if self.n else NAN,
            f"ndcg@{self.ndcg_k}": self._ndcg_sum / n if self.n else NAN,
            "unseen_rate": self.n_unseen / n if self.n else NAN,
            "mean_rank_seen": self._rank_sum / seen if seen else NAN,
            "n": self.n,
        }


def ranking_metrics(
    scores: np.ndarray, targets: np.ndarray, recall_k: int = 20, ndcg_k: int = 10
) -> dict[str, float | int]:
    """Recall@K / NDCG@K of one score matrix (small inputs; use RankingMetrics to stream)."""
    acc = RankingMetrics(recall_k=recall_k, ndcg_k=ndcg_k)
    acc.update(scores, targets)
    return acc.result()
