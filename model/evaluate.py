"""Score an exported model and the baselines on the same test points.

Protocol (docs/evaluation.md): a global time split; every event from the test cutoff on is
predicted from everything before it (`model.sequences.test_points`); binary labels whose
horizon runs past the end of the log are censored and left out; next item and next category
are ranked against the whole id space of the log, and a target outside a model's vocabulary
is a miss (counted in `unseen_rate`).

The Transformer is scored through `model.runtime.OnnxModel` on the exported artifact, the
same graph the service runs, on windows featurized by `model.features.featurize_indexed`
with the artifact's vocabularies (the same featurization as the service's
`featurize_windows`, vectorized). Its item / category logits are mapped from the vocabulary
layout to the log's code space: ids outside the vocabulary score -inf, hashed OOV bucket
columns are never ranked themselves, but an id outside the vocabulary that occurs in the
point's window is ranked by its bucket's score, as the service does
(`model.features.window_oov`: the copy heads put probability on the window's own rows).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model import metrics
from model.artifact import Artifact, load_artifact
from model.baselines import CLASSICAL, Horizon, Scorer, Scores, fit_classical
from model.features import BEHAVIOR_NAMES, Features, FeatureSpec, Vocab, featurize_indexed
from model.runtime import OnnxModel
from model.sequences import CENSORED, EventLog, Points, TimeSplit, test_points

logger = logging.getLogger(__name__)

BASELINES = ("popularity", "markov", "last", "gru", "lightgbm")
CHUNK = 256
RECALL_K = 20
NDCG_K = 10


class Progress:
    """Points scored and rate, to stderr at most once a second (only when enabled)."""

    def __init__(self, enabled: bool, label: str, total: int) -> None:
        self.enabled = enabled
        self.label = label
        self.total = total
        self.t0 = time.monotonic()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        final = done >= self.total
        if not self.enabled or (not final and now - self.last < 1.0):
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        end = "\n" if final else "\r"
        sys.stderr.write(
            f"evaluate {self.label}: {done:,}/{self.total:,} points ({rate:,.0f}/s){end}"
        )
        sys.stderr.flush()


def chunks(points: Points, size: int = CHUNK) -> list[Points]:
    """Consecutive slices of at most `size` points."""
    return [
        Points(
            start=points.start[lo : lo + size],
            last=points.last[lo : lo + size],
            purchase=points.purchase[lo : lo + size],
            returns=points.returns[lo : lo + size],
        )
        for lo in range(0, len(points), size)
    ]


def window_events(points: Points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event indices of all windows, concatenated; local starts; lengths): the rows a batch
    needs, so a batch costs O(batch x window) however long the log is."""
    lengths = points.length
    local_starts = np.cumsum(lengths) - lengths
    offset = np.arange(lengths.sum()) - np.repeat(local_starts, lengths)
    return np.repeat(points.start, lengths) + offset, local_starts, lengths


def code_columns(raw_ids: np.ndarray, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """For each code of a log's id table: its vocabulary index, and whether it is a known id
    (a column the model ranks) rather than missing or a hashed OOV bucket."""
    index = vocab.lookup(None if r is None else str(r) for r in raw_ids)
    return index, vocab.is_known(index)


def rank_window_oov(
    scores: np.ndarray, logits: np.ndarray, index: np.ndarray, oov: np.ndarray,
    point: np.ndarray, codes: np.ndarray,
) -> None:
    """Give the codes outside the vocabulary that occur in a point's window their bucket's
    score, in place: `model.features.window_oov` over code arrays, the service's rule.

    scores (B, n codes); logits (B, vocab rows); index/oov per code (vocabulary row, is a
    hashed bucket); point/codes the (point, code) of every window event. Distinct codes of
    one window sharing a bucket split it (log of their count subtracted)."""
    keep = oov[codes]
    pairs = np.unique(np.stack([point[keep], codes[keep]], axis=1), axis=0)  # (P, 2)
    if len(pairs) == 0:
        return
    b, c = pairs[:, 0], pairs[:, 1]
    rows = index[c]
    _, inverse, counts = np.unique(
        np.stack([b, rows], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    scores[b, c] = logits[b, rows] - np.log(counts[inverse.ravel()])


Predict = Callable[[Features], Mapping[str, np.ndarray]]


class VocabScorer:
    """A network (ONNX or PyTorch, anything with the artifact's outputs) as a `Scorer`."""

    def __init__(self, predict: Predict, spec: FeatureSpec, items: Vocab, categories: Vocab):
        self.predict = predict
        self.spec = spec
        self.items = items
        self.categories = categories
        self._log: EventLog | None = None

    def _bind(self, log: EventLog) -> None:
        if self._log is log:
            return
        self._log = log
        self.item_index, self.item_known = code_columns(log.item_ids, self.items)
        self.category_index, self.category_known = code_columns(log.category_ids, self.categories)
        self.item_oov = self.items.is_oov(self.item_index)
        self.category_oov = self.categories.is_oov(self.category_index)

    def features(self, log: EventLog, points: Points) -> Features:
        """Model inputs of the points' windows (what `featurize_windows` makes of the same
        events as raw `Event`s)."""
        return self._features(log, *window_events(points))

    def _features(
        self, log: EventLog, rows: np.ndarray, local_starts: np.ndarray, lengths: np.ndarray
    ) -> Features:
        self._bind(log)
        return featurize_indexed(
            self.item_index[log.item[rows]],
            self.category_index[log.category[rows]],
            log.behavior[rows],
            log.ts[rows],
            local_starts,
            lengths,
            self.spec,
        )

    def score(self, log: EventLog, points: Points) -> Scores:
        rows, local_starts, lengths = window_events(points)
        out = self.predict(self._features(log, rows, local_starts, lengths))
        point = np.repeat(np.arange(len(lengths)), lengths)  # the point of each window event

        def ranked(logits: np.ndarray, index: np.ndarray, known: np.ndarray, oov: np.ndarray,
                   codes: np.ndarray) -> np.ndarray:
            logits = np.asarray(logits)
            scores = logits[:, index]  # (B, n codes)
            scores[:, ~known] = -np.inf
            rank_window_oov(scores, logits, index, oov, point, codes[rows])
            return scores

        return Scores(
            behavior=np.asarray(out["behavior_probs"], dtype=np.float64),
            purchase=np.asarray(out["purchase_prob"], dtype=np.float64),
            returns=np.asarray(out["return_prob"], dtype=np.float64),
            category=ranked(out["category_logits"], self.category_index, self.category_known,
                            self.category_oov, log.category),
            item=ranked(out["item_logits"], self.item_index, self.item_known, self.item_oov,
                        log.item),
        )


def onnx_scorer(artifact: Artifact, *, int8: bool = False) -> VocabScorer:
    model = OnnxModel(artifact, int8=int8)
    logger.info("evaluating %s on %s", artifact.onnx_path, model.providers)
    return VocabScorer(model.run, artifact.manifest.features, artifact.items, artifact.categories)


def _clean(value: Any) -> Any:
    """NaN (an undefined metric) -> None, so the result is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


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
    n = len(BEHAVIOR_NAMES)
    per_class = metrics.per_class_auc(y, probs)
    top = metrics.reliability(probs.max(axis=1), pred == y)
    return {
        "macro_auc": metrics.macro_auc(y, probs),
        "log_loss": metrics.log_loss(y, probs),
        "accuracy": metrics.accuracy(y, pred),
        "macro_f1": metrics.macro_f1(y, pred, n),
        "per_class_auc": dict(zip(BEHAVIOR_NAMES, per_class, strict=True)),
        "ece_top_label": top.ece,
        "confusion_matrix": metrics.confusion_matrix(y, pred, n).tolist(),
        "reliability": top.to_dict(),
        "n": len(y),
    }


def _ranking(acc: metrics.RankingMetrics) -> dict[str, Any]:
    return acc.result()


def score_points(
    scorer: Scorer,
    log: EventLog,
    points: Points,
    *,
    label: str = "model",
    progress: bool = False,
    chunk_size: int = CHUNK,
) -> dict[str, Any]:
    """Run one scorer over all points in chunks and compute every head it answers (M).
    Binary heads are scored where their label is not censored (the whole horizon is in the
    log, model.sequences)."""
    item_acc = metrics.RankingMetrics(RECALL_K, NDCG_K)
    category_acc = metrics.RankingMetrics(RECALL_K, NDCG_K)
    behavior: list[np.ndarray] = []
    purchase: list[np.ndarray] = []
    returns: list[np.ndarray] = []
    shown = Progress(progress, label, len(points))
    done = 0
    for chunk in chunks(points, chunk_size):
        out = scorer.score(log, chunk)
        target = chunk.last + 1
        if out.item is not None:
            item_acc.update(out.item, log.item[target])
        if out.category is not None:
            category_acc.update(out.category, log.category[target])
        for kept, value in (
            (behavior, out.behavior),
            (purchase, out.purchase),
            (returns, out.returns),
        ):
            if value is not None:
                kept.append(value)
        done += len(chunk)
        shown.update(done)
    result: dict[str, Any] = {}
    if behavior:
        y = log.behavior[points.target].astype(np.int64)
        result["next_behavior"] = _behavior_metrics(np.concatenate(behavior), y)
    for head, kept, labels in (
        ("purchase", purchase, points.purchase),
        ("return", returns, points.returns),
    ):
        if not kept:
            continue
        prob = np.concatenate(kept)
        result[head] = _binary_metrics(prob, labels)
    if item_acc.n:
        result["next_item"] = _ranking(item_acc)
    if category_acc.n:
        result["next_category"] = _ranking(category_acc)
    return result


@dataclass(frozen=True)
class GruOptions:
    """How the GRU baseline is trained when the evaluator trains it itself."""

    preset: str = "default"
    overrides: tuple[tuple[str, Any], ...] = ()


def fit_gru(
    log: EventLog,
    split: TimeSplit,
    manifest_extra: Mapping[str, Any],
    h: Horizon,
    *,
    options: GruOptions = GruOptions(),
    progress: bool = False,
) -> VocabScorer:
    """Train the GRU baseline (same embeddings, heads, split, labels and calibration as the
    Transformer; only the encoder differs) and score it through PyTorch on CPU with
    `TrainedModel.predict`, which computes the exported graph's outputs."""
    from model.train import TrainConfig, fit

    saved = manifest_extra.get("train_config")
    known = set(TrainConfig().to_dict())
    settings = {k: v for k, v in (saved or {}).items() if k in known}
    cfg = TrainConfig.preset(
        options.preset,
        **{
            **settings,
            **dict(options.overrides),
            "encoder": "gru",
            "window_len": h.window_len,
            "horizon_seconds": h.horizon,
            "return_gap_seconds": h.return_gap,
        },
    )
    trained = fit(cfg, log, split, tz_offset_seconds=h.tz_offset_seconds, progress=progress)
    return VocabScorer(trained.predict, trained.spec, trained.items, trained.categories)


def _baseline_names(baselines: bool | list[str]) -> list[str]:
    if baselines is True:
        return list(BASELINES)
    if baselines is False:
        return []
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {', '.join(BASELINES)}")
    return [b for b in BASELINES if b in baselines]


def evaluate(
    artifact: str | Path | Artifact,
    log: EventLog,
    split: TimeSplit,
    *,
    baselines: bool | list[str] = True,
    progress: bool = True,
    chunk_size: int = CHUNK,
    gru: GruOptions = GruOptions(),
) -> dict[str, Any]:
    """The model and the baselines on the test points of `split`.

    Returns {"n_test_points", "model": M, "baselines": {name: M}, "protocol": {...}} where M
    has "next_behavior" {macro_auc, log_loss, accuracy, macro_f1, per-class AUC, confusion
    matrix, ...}, "purchase" and "return" {auc, pr_auc, log_loss, ece, ...}, "next_item" and
    "next_category" {recall@20, ndcg@10, unseen_rate, ...}; a baseline without an answer for
    a head omits it. Undefined metrics (e.g. AUC with one class) are None.
    """
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    m = art.manifest
    h = Horizon(
        window_len=m.features.window_len,
        horizon=m.horizon_seconds,
        return_gap=m.return_gap_seconds,
        tz_offset_seconds=m.features.tz_offset_seconds,
    )
    points = test_points(log, split, h.window_len, h.horizon, h.return_gap)
    if len(points) == 0:
        raise ValueError("the test period has no prediction points; use more data")
    logger.info("%d test points (targets from %d on)", len(points), split.test_cutoff)

    def run(scorer: Scorer, label: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = score_points(
            scorer,
            log,
            points,
            label=label,
            progress=progress,
            chunk_size=chunk_size,
        )
        result["seconds"] = time.perf_counter() - t0
        return result

    result: dict[str, Any] = {
        "n_test_points": len(points),
        "model": run(onnx_scorer(art), "model"),
        "baselines": {},
        **({"model_int8": run(onnx_scorer(art, int8=True), "model int8")} if m.has_int8 else {}),
        "protocol": {
            "split": {
                "val_cutoff": split.val_cutoff,
                "test_cutoff": split.test_cutoff,
                "end": split.end,
            },
            "window_len": h.window_len,
            "horizon_seconds": h.horizon,
            "return_gap_seconds": h.return_gap,
            "n_items": len(log.item_ids),
            "n_categories": len(log.category_ids),
            "ranking_ties": "expected rank (uniform tie-breaking)",
        },
    }
    for name in _baseline_names(baselines):
        t0 = time.perf_counter()
        scorer = (
            fit_classical([name], log, split, h)[name]
            if name in CLASSICAL
            else fit_gru(log, split, m.extra, h, options=gru, progress=progress)
        )
        fit_seconds = time.perf_counter() - t0
        result["baselines"][name] = {**run(scorer, name), "fit_seconds": fit_seconds}
    return dict(_clean(result))
