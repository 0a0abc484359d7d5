"""One scorer over all test points, chunk by chunk, and the metrics of every head it answers.

Binary heads are scored where their label is not censored (the whole horizon is in the log,
`model.sequences`); next item and next category are ranked against the whole code space of
the log: each scorer answers where a chunk's targets rank (`Ranked`), in memory independent
of the catalog, and the ranks are accumulated chunk by chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model import metrics
from model.evaluation.protocol import Scorer
from model.features import BEHAVIOR_NAMES
from model.progress import progress_bar
from model.sequences import CENSORED, EventLog, Points

CHUNK = 256
RECALL_K = 20
NDCG_K = 10


def _binary_metrics(prob: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    known = labels != CENSORED
    y, p = labels[known].astype(np.int64), prob[known]
    rel = metrics.reliability(p, y)
    return {
        "auc": metrics.roc_auc(y, p),
        "pr_auc": metrics.average_precision(y, p),
        "log_loss": metrics.log_loss(y, p),
        "ece": rel.ece,
        "positive_rate": float(y.mean()) if len(y) else float("nan"),
        "n": int(known.sum()),
        "n_censored": int((~known).sum()),
        "reliability": rel.to_dict(),
    }


def _behavior_metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    pred = probs.argmax(axis=1)
    per_class = metrics.per_class_auc(y, probs)
    top = metrics.reliability(probs.max(axis=1), pred == y)
    return {
        "macro_auc": metrics.macro_auc(y, probs),
        "log_loss": metrics.log_loss(y, probs),
        "accuracy": metrics.accuracy(y, pred),
        "macro_f1": metrics.macro_f1(y, pred),
        "per_class_auc": dict(zip(BEHAVIOR_NAMES, per_class, strict=True)),
        "ece_top_label": top.ece,
        "confusion_matrix": metrics.confusion_matrix(y, pred, len(BEHAVIOR_NAMES)).tolist(),
        "reliability": top.to_dict(),
        "n": len(y),
    }


def score_points(
    scorer: Scorer,
    log: EventLog,
    points: Points,
    *,
    label: str = "model",
    progress: bool = False,
    chunk_size: int = CHUNK,
) -> dict[str, Any]:
    """Run one scorer over all points in chunks and compute every head it answers (M)."""
    item_acc = metrics.RankingMetrics(RECALL_K, NDCG_K)
    category_acc = metrics.RankingMetrics(RECALL_K, NDCG_K)
    behavior: list[np.ndarray] = []
    purchase: list[np.ndarray] = []
    returns: list[np.ndarray] = []
    raw: dict[str, list[np.ndarray]] = {"behavior": [], "purchase": [], "return": []}
    with progress_bar(total=len(points), desc=f"evaluate {label}", unit="points",
                      show=progress) as shown:
        for lo in range(0, len(points), chunk_size):
            chunk = points.take(slice(lo, lo + chunk_size))
            out = scorer.score(log, chunk)
            if out.item is not None:
                item_acc.update(out.item)
            if out.category is not None:
                category_acc.update(out.category)
            for kept, value in (
                (behavior, out.behavior),
                (purchase, out.purchase),
                (returns, out.returns),
            ):
                if value is not None:
                    kept.append(value)
            if out.uncalibrated is not None:
                for head, value in (("behavior", out.uncalibrated.behavior),
                                    ("purchase", out.uncalibrated.purchase),
                                    ("return", out.uncalibrated.returns)):
                    if value is not None:
                        raw[head].append(value)
            shown.update(len(chunk))
    result: dict[str, Any] = {}
    if behavior:
        y = log.behavior[points.target].astype(np.int64)
        result["next_behavior"] = _behavior_metrics(np.concatenate(behavior), y)
        if raw["behavior"]:
            probs = np.concatenate(raw["behavior"])
            result["next_behavior"]["ece_top_label_uncalibrated"] = metrics.reliability(
                probs.max(axis=1), probs.argmax(axis=1) == y).ece
    for head, kept, labels in (
        ("purchase", purchase, points.purchase),
        ("return", returns, points.returns),
    ):
        if kept:
            result[head] = _binary_metrics(np.concatenate(kept), labels)
            if raw[head]:
                known = labels != CENSORED
                result[head]["ece_uncalibrated"] = metrics.reliability(
                    np.concatenate(raw[head])[known], labels[known]).ece
    if item_acc.n:
        result["next_item"] = item_acc.result()
        ann_recall = getattr(scorer, "ann_recall", None)
        if ann_recall is not None:  # the network's approximate item search against exact
            result["next_item"][f"ann_recall@{RECALL_K}"] = ann_recall
    if category_acc.n:
        result["next_category"] = category_acc.result()
    return result
