"""Score an exported model and the baselines on the same test points.

Protocol (docs/evaluation.md): a global time split; every event from the test cutoff on is
predicted from everything before it (`model.sequences.test_points`); binary labels whose
horizon runs past the end of the log are censored and left out; next item and next category
are ranked against the whole id space of the log, and a target outside a model's vocabulary
is a miss (counted in `unseen_rate`). A test period with millions of points may be scored
on a seeded sample of them (`sample`), which the protocol then states. The network is
scored through ONNX Runtime
(`model.evaluation.network`), the baselines as `model.baselines.registry` fits them, each
by `model.evaluation.scoring.score_points`.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from model.artifact import Artifact, load_artifact
from model.baselines.gru import GruOptions
from model.baselines.registry import Fitting, fit_baseline, select
from model.evaluation.network import onnx_scorer
from model.evaluation.protocol import Horizon, Scorer
from model.evaluation.scoring import CHUNK, score_points
from model.sequences import EventLog, TimeSplit, later_points, test_points

logger = logging.getLogger(__name__)

LATER_POINTS = 5000  # test points also asked about at a random later time (seeded sample)
LATER_HEADS = ("next_behavior", "purchase", "return")  # what the moment of asking changes


def _clean(value: Any) -> Any:
    """NaN (an undefined metric) -> None, so the result is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _protocol(log: EventLog, split: TimeSplit, h: Horizon) -> dict[str, Any]:
    """What the figures were measured on, for the report (a "sample" is added when the
    points are sampled)."""
    return {
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
    }


def evaluate(
    artifact: str | Path | Artifact,
    log: EventLog,
    split: TimeSplit,
    *,
    baselines: bool | list[str] = True,
    progress: bool = True,
    chunk_size: int = CHUNK,
    gru: GruOptions | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
) -> dict[str, Any]:
    """The model and the baselines on the test points of `split`.

    Returns {"n_test_points", "model": M, "baselines": {name: M}, "protocol": {...}} where M
    has "next_behavior" {macro_auc, log_loss, accuracy, macro_f1, per-class AUC, confusion
    matrix, ...}, "purchase" and "return" {auc, pr_auc, log_loss, ece, ...}, "next_item" and
    "next_category" {recall@20, ndcg@10, unseen_rate, ...}; a baseline without an answer for
    a head omits it. Undefined metrics (e.g. AUC with one class) are None. `gru` says how
    the GRU baseline is trained (default: `GruOptions()`). With `sample`, a test period of
    more points is scored on `sample` of them drawn with `sample_seed` (every scorer on the
    same ones), and "protocol" gets "sample": {"n", "of", "seed"}.
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
    protocol = _protocol(log, split, h)
    if sample is not None and len(points) > sample:
        protocol["sample"] = {"n": sample, "of": len(points), "seed": sample_seed}
        points = points.sample(sample, sample_seed)
        logger.info("scoring a sample of %d of them (seed %d)", sample, sample_seed)

    # The same windows asked about at a random later time, before their next event: what a
    # storefront asks about a shopper who has been idle (labels counted from then on).
    later = later_points(log, points.sample(LATER_POINTS, sample_seed), h.horizon,
                         h.return_gap, split.end, sample_seed)

    def run(scorer: Scorer, label: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = score_points(
            scorer, log, points, label=label, progress=progress, chunk_size=chunk_size
        )
        result["seconds"] = time.perf_counter() - t0
        idle = score_points(scorer, log, later, label=f"{label}, later", progress=progress,
                            chunk_size=chunk_size)
        result["later"] = {k: v for k, v in idle.items() if k in LATER_HEADS}
        return result

    protocol["later"] = {"n": len(later), "seed": sample_seed,
                         "idle_seconds_median": float(np.median(later.now - log.ts[later.last]))}
    result: dict[str, Any] = {
        "n_test_points": len(points),
        "model": run(onnx_scorer(art), "model"),
        "baselines": {},
        **({"model_int8": run(onnx_scorer(art, int8=True), "model int8")} if m.has_int8 else {}),
        "protocol": protocol,
    }
    fitting = Fitting(
        log, split, h, manifest_extra=m.extra, gru=gru or GruOptions(), progress=progress
    )
    for name in select(baselines):
        t0 = time.perf_counter()
        scorer = fit_baseline(name, fitting)
        fit_seconds = time.perf_counter() - t0
        result["baselines"][name] = {**run(scorer, name), "fit_seconds": fit_seconds}
    return dict(_clean(result))
