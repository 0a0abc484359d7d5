"""Validation: the sampled validation points, scored like the service scores them (the last
position of each window), for early stopping and calibration (the calibrators and the
surprise quantiles, `model.calibrate`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from model.anomaly import AnomalyScorer, fit_tables
from model.artifact import OUTPUT_NAMES
from model.calibrate import HEADS as CALIBRATED
from model.calibrate import Calibration, calibrate, surprise_quantiles
from model.features import INPUT_NAMES, Features, FeatureSpec
from model.net.config import HEAD_NAMES
from model.net.losses import bce_loss, ce_loss
from model.net.network import SeqNet
from model.net.scorer import Scorer
from model.sequences import EventLog, TimeSplit, validation_points, window_rows
from model.train.batches import window_features
from model.train.config import TrainConfig
from model.train.inference import Batch, map_batches

EVAL_BATCH = 512
SURPRISE_BATCH = 64  # the surprise needs (B, T, n_categories) logits
SURPRISE = OUTPUT_NAMES.index("event_surprise")  # the Scorer's outputs are in this order
LAST_POSITION = ("behavior", "purchase", "return", "category")


@dataclass(frozen=True)
class Validation:
    """Featurized validation points and their targets (last position of each window)."""

    features: Features
    targets: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.features["item"])


def validation_set(
    events: EventLog, split: TimeSplit, cfg: TrainConfig, spec: FeatureSpec,
    items: np.ndarray, categories: np.ndarray,
) -> tuple[Validation, int]:
    """The featurized sample of `cfg.max_val_points` validation points, and how many there
    were in all. items, categories: the log's code -> vocabulary index tables."""
    before_test, every = validation_points(
        events, split, cfg.window_len, cfg.horizon_seconds, cfg.return_gap_seconds
    )
    points = every.sample(cfg.max_val_points, cfg.seed)
    # the sampled windows' events only, mapped to vocabulary rows: never a copy of the log
    rows = window_rows(points.start, points.length).events
    local = np.cumsum(points.length) - points.length
    feats = window_features(
        items[before_test.item[rows]], categories[before_test.category[rows]],
        before_test.behavior[rows], before_test.ts[rows], local, points.length, spec,
        cfg.window_len,
    )
    t = points.target
    return Validation(
        features=feats,
        targets={
            "behavior": before_test.behavior[t].astype(np.int64),
            "category": categories[before_test.category[t]].astype(np.int64),
            "item": items[before_test.item[t]].astype(np.int64),
            "purchase": points.purchase.astype(np.int64),
            "return": points.returns.astype(np.int64),
        },
    ), len(every)


def last_position_logits(
    net: SeqNet, features: Features, device: torch.device, item_target: np.ndarray | None = None
) -> dict[str, Tensor]:
    """Head outputs at the last position of each window (CPU tensors): behavior, purchase
    and return logits, category scores, and with item_target (-1: none) the item head's
    log-probability of it ("item_logp", 0 where there is no target). Heads run on the last
    position only, and no (points x items) matrix is built: the item head's normaliser is
    summed over blocks of rows (`SeqNet.last_target_logp`)."""
    names = LAST_POSITION + (("item_logp",) if item_target is not None else ())
    if len(features["item"]) == 0:
        return {k: torch.zeros(0) for k in names}

    def heads(x: Batch) -> list[Tensor]:
        inputs = [x[k] for k in INPUT_NAMES]
        hidden = net.encode(*inputs)
        h = hidden[:, -1]  # (B, C)
        item, category = inputs[0], inputs[1]
        out = [net.behavior_head(h), net.purchase_head(h).squeeze(-1),
               net.return_head(h).squeeze(-1),
               net.last_head_scores("category", hidden, item, category)]
        if item_target is not None:
            t = x["item_target"]
            logp = net.last_target_logp("item", hidden, item, item, t.clamp(min=0))
            out.append(torch.where(t >= 0, logp, torch.zeros_like(logp)))
        return out

    arrays = dict(features)
    if item_target is not None:
        arrays["item_target"] = item_target
    was_training = net.training
    net.eval()
    outputs = map_batches(heads, arrays, EVAL_BATCH, device)
    net.train(was_training)
    return dict(zip(names, outputs, strict=True))


def validation_losses(net: SeqNet, val: Validation, device: torch.device) -> dict[str, float]:
    """Mean loss per head at the last position of the validation windows (full softmax)."""
    if len(val) == 0:
        return {head: float("nan") for head in HEAD_NAMES}
    out = last_position_logits(net, val.features, device, val.targets["item"])
    t = {k: torch.from_numpy(v) for k, v in val.targets.items()}
    zero = torch.zeros(())
    has_item = t["item"] >= 0
    losses = {
        "behavior": ce_loss(out["behavior"], t["behavior"], zero),
        "purchase": bce_loss(out["purchase"], t["purchase"], zero),
        "return": bce_loss(out["return"], t["return"], zero),
        "category": ce_loss(out["category"], t["category"], zero),
        "item": -out["item_logp"][has_item].mean() if bool(has_item.any()) else zero,
    }
    return {k: float(v) for k, v in losses.items()}


def calibrate_on(
    net: SeqNet, val: Validation, device: torch.device, spec: FeatureSpec
) -> tuple[Calibration, list[float], dict[str, list[float]]]:
    """Calibrators chosen on the validation points (`model.calibrate.calibrate`), and the
    anomaly score's tables of those windows (`model.anomaly`): the surprise quantiles (as
    the exported graph computes the surprise) and the scripted measures' tables."""
    out = last_position_logits(net, val.features, device)
    heads = {}
    for head in CALIBRATED:
        labels = torch.from_numpy(val.targets[head])
        known = labels >= 0
        heads[head] = (out[head][known], labels[known])
    calibration = calibrate(heads)
    if len(val) == 0:
        return calibration, surprise_quantiles(np.zeros((0, 0)), np.zeros((0, 0))), {}
    scorer = Scorer(net).to(device).eval()

    def surprise(x: Batch) -> list[Tensor]:
        return [scorer(*[x[k] for k in INPUT_NAMES])[SURPRISE]]

    (scored,) = map_batches(surprise, val.features, SURPRISE_BATCH, device)
    surprises = scored.numpy()
    quantiles = surprise_quantiles(surprises, val.features["behavior"])
    tables = fit_tables(AnomalyScorer(quantiles, {}, spec), val.features, surprises)
    return calibration, quantiles, tables
