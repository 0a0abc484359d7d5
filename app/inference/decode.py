"""Model outputs -> answers: one prediction per window, in the JSON shape of
`app.schemas.PredictionOut` (without `user_id`), and the priors' answer for an empty window.

Built as plain dicts and floats: the hot route serializes them directly, the others validate
them. Keys whose value would be null are left out, as `response_model_exclude_none` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.inference.slot import LoadedModel
from model.features import BEHAVIOR_NAMES, FIRST_KNOWN, Event, Features, Vocab, window_oov
from model.retrieval import Candidates, item_candidates
from model.runtime import Outputs

Prediction = dict[str, Any]


def top_k_ids(logits: np.ndarray, vocab: Vocab, window_ids: Sequence[str | None],
              window_rows: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The k most probable ids of one row of scores over the vocabulary layout (a softmax of
    them is the head's distribution), best first, as `{"id", "score"}` with the head's
    probability: among the known ids, plus the window's ids outside the vocabulary, each
    scored by its hashed bucket (`model.features.window_oov`: the copy heads put probability
    there). window_rows are the window's featurized rows of this vocabulary."""
    weights = np.exp(logits.astype(np.float64) - logits.max())
    prob = weights / weights.sum()
    rows = np.arange(FIRST_KNOWN, vocab.first_oov)
    k = min(k, len(rows))
    if k <= 0:
        return []
    part = rows[np.argpartition(-prob[rows], k - 1)[:k]]
    return _best(part, prob[part], lambda r: prob[r], vocab, window_ids, window_rows, k)


def top_items(found: Candidates, row: int, vocab: Vocab, window_ids: Sequence[str | None],
              window_rows: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The k most probable items of one window, as `top_k_ids` answers: the item mixture's
    candidates of its row of `found` (`model.retrieval.item_candidates`, the evaluator's
    ranking too, searched for the whole batch at once), scored with their probability.
    window_rows is the window's whole item input (its last len(window_ids) columns are the
    window's)."""
    valid = found.rows[row] >= 0
    rows, prob = found.rows[row][valid], found.prob[row][valid]
    known = vocab.is_known(rows)
    # The window's rows are among the candidates: no array over the catalog is needed.
    by_row = dict(zip(rows.tolist(), prob.tolist(), strict=True))
    return _best(rows[known], prob[known],
                 lambda r: np.array([by_row.get(x, 0.0) for x in r.tolist()]), vocab,
                 window_ids, window_rows[len(window_rows) - len(window_ids):], k)


@dataclass(frozen=True)
class BatchScores:
    """What a batch's windows are scored on together, row i for batch row `rows[i]`: their
    item candidates (at least k each, in one search) and their anomaly measures (mean
    surprise and score, NaN for windows of fewer than two events)."""

    found: Candidates
    surprise: np.ndarray
    anomaly: np.ndarray


def batch_scores(current: LoadedModel, features: Features, out: Outputs, rows: np.ndarray,
                 k: int) -> BatchScores:
    """The item search and the anomaly scores of the batch rows `rows`, once for all."""
    found = item_candidates(current.items, out["item_query"][rows], out["item_gate"][rows],
                            out["item_copy"][rows], features["item"][rows], k)
    surprise, anomaly = current.anomaly.scores({name: v[rows] for name, v in features.items()},
                                               out["event_surprise"][rows])
    return BatchScores(found, surprise, anomaly)


def _best(known: np.ndarray, known_prob: np.ndarray,
          prob_of: Callable[[np.ndarray], np.ndarray], vocab: Vocab,
          window_ids: Sequence[str | None], window_rows: np.ndarray,
          k: int) -> list[dict[str, Any]]:
    """The k best of the known rows (with their probabilities known_prob) and the window's
    ids outside the vocabulary (a bucket's probability, `prob_of` its rows, split evenly
    between the window's ids sharing it)."""
    extra_ids, extra_rows, extra_shift = window_oov(vocab, window_ids, window_rows)
    scores = np.concatenate([known_prob, prob_of(extra_rows) / np.exp(extra_shift)])
    order = np.argsort(-scores, kind="stable")[:k]
    n_known, ids = len(known), vocab.ids
    return [
        {"id": ids[known[i] - FIRST_KNOWN] if i < n_known else extra_ids[i - n_known],
         "score": float(scores[i])}
        for i in order.tolist()
    ]


def decode_prediction(
    current: LoadedModel, features: Features, out: Outputs, row: int, window: list[Event],
    top_k: int, explain: bool, scores: BatchScores, scored: int,
) -> Prediction:
    """The answer for `window`, scored in batch row `row`, its item candidates and anomaly
    score in row `scored` of `scores` (`batch_scores`); with `explain`, its occlusions
    (`model.features.occlusions`) are the rows right after it."""
    artifact = current.artifact
    manifest = artifact.manifest
    purchase = float(out["purchase_prob"][row])
    n = len(window)  # the row's last n columns (left padding before them)
    prediction: Prediction = {
        "model_version": manifest.model_version,
        "cold_start": False,
        "window_length": len(window),
        "next_behavior": dict(
            zip(manifest.behaviors, out["behavior_probs"][row].tolist(), strict=True)
        ),
        "purchase_probability": purchase,
        "return_probability": float(out["return_prob"][row]),
        "horizon_seconds": manifest.horizon_seconds,
        "top_items": top_items(scores.found, scored, artifact.items,
                               [e.item_id for e in window], features["item"][row], top_k),
        "top_categories": top_k_ids(out["category_logits"][row], artifact.categories,
                                    [e.category_id for e in window],
                                    features["category"][row, -n:], top_k),
    }
    score = float(scores.anomaly[scored])
    if math.isfinite(score):
        prediction["anomaly"] = {"surprise": float(scores.surprise[scored]), "percentile": score}
    if explain:
        if len(window) == 1:
            without = [manifest.priors.purchase]
        else:
            without = out["purchase_prob"][row + 1 : row + 1 + len(window)].tolist()
        prediction["explanation"] = _contributions(window, purchase, without)
    return prediction


def _contributions(window: list[Event], purchase: float,
                   without: list[float]) -> list[dict[str, Any]]:
    """Each event's contribution: the purchase probability with it minus without it, the
    largest in magnitude first."""
    contributions = []
    for i, e in enumerate(window):
        contribution: dict[str, Any] = {"position": i, "item_id": e.item_id}
        if e.category_id is not None:
            contribution["category_id"] = e.category_id
        contribution["behavior"] = BEHAVIOR_NAMES[e.behavior]
        contribution["timestamp"] = float(e.ts)
        contribution["contribution"] = purchase - without[i]
        contributions.append(contribution)
    contributions.sort(key=lambda c: -abs(c["contribution"]))
    return contributions


def prior_prediction(current: LoadedModel, top_k: int, explain: bool) -> Prediction:
    """The answer for an empty window (cold start): the manifest's priors."""
    manifest = current.artifact.manifest
    priors = manifest.priors
    prediction: Prediction = {
        "model_version": manifest.model_version,
        "cold_start": True,
        "window_length": 0,
        "next_behavior": {
            name: float(p) for name, p in zip(manifest.behaviors, priors.behavior, strict=True)
        },
        "purchase_probability": float(priors.purchase),
        "return_probability": float(priors.return_),
        "horizon_seconds": manifest.horizon_seconds,
        "top_items": [{"id": i} for i in priors.top_items[:top_k]],
        "top_categories": [{"id": c} for c in priors.top_categories[:top_k]],
    }
    if explain:
        prediction["explanation"] = []
    return prediction
