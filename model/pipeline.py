"""From an event log to an evaluated, exported artifact: the steps `seqcast train` runs.

load + clean  ->  global time split  ->  fit (early stopping, calibration)
    ->  stage (ONNX, vocabulary, parity check)  ->  evaluate vs baselines  ->  report
    ->  publish (the manifest, with the evaluation's metrics, written once and last)

Under torchrun (a distributed `Placement`) every rank loads and trains; rank 0 alone
stages, evaluates, reports and publishes, while the others wait for it in
`Placement.finish`.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.artifact import Artifact, InputStats
from model.data import LoadedLog
from model.features import Event, FeatureSpec, Vocab
from model.sequences import EventLog, SplitConfig, TimeSplit, validation_points

if TYPE_CHECKING:
    from model.train.distributed import Placement

log = logging.getLogger(__name__)

PARITY_WINDOWS = 64


def parity_windows(
    events: EventLog, split: TimeSplit, window_len: int, seed: int
) -> list[list[Event]]:
    """Real windows for the export parity check: validation points of many lengths."""
    before_test, points = validation_points(events, split, window_len, horizon=1, return_gap=1)
    if len(points) == 0:
        raise ValueError("the validation period has no prediction points; use more data")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(points), size=min(PARITY_WINDOWS, len(points)), replace=False)
    return [before_test.events(int(points.start[k]), int(points.last[k]) + 1) for k in pick]


def input_stats(
    events: EventLog, split: TimeSplit, spec: FeatureSpec, items: Vocab, categories: Vocab
) -> InputStats:
    """The manifest's drift reference: the training events' input distribution, and the
    unknown-id shares of the events after them (each raw id looked up once)."""
    train = events.ts < split.val_cutoff
    held_out = ~train
    item_unknown = items.is_oov(items.lookup(events.item_ids.tolist()))
    category_unknown = categories.is_oov(categories.lookup(events.category_ids.tolist()))
    return InputStats.of_events(
        user=events.user[train], behavior=events.behavior[train], ts=events.ts[train],
        window_len=spec.window_len, gap_edges=spec.gap_edges_seconds,
        held_out_item_unknown=item_unknown[events.item[held_out]],
        held_out_category_unknown=category_unknown[events.category[held_out]],
    )


def train_artifact(
    data: LoadedLog,
    out: Path,
    cfg: Any,
    *,
    split_cfg: SplitConfig | None = None,
    init_from: Path | None = None,
    baselines: bool | list[str] = True,
    int8: bool = False,
    progress: bool = True,
    eval_sample: int | None = None,
    eval_seed: int = 0,
    place: Placement | None = None,
) -> dict[str, Any] | None:
    """Train, calibrate, export and evaluate (on a seeded sample of `eval_sample` test
    points when there are more); the artifact lands in `out`. Returns the evaluation (the
    `seqcast evaluate --json` object), on rank 0 of a distributed place (default: one
    process on cfg.device); None on the other ranks, which write nothing."""
    from model.evaluate import evaluate
    from model.export import publish, stage
    from model.head import attach_head
    from model.report import write_report
    from model.train import fit
    from model.train.distributed import Placement

    place = place or Placement.local(cfg.device)
    events = data.log
    split_cfg = split_cfg or SplitConfig()
    split = split_cfg.apply(events)
    if split.test_cutoff - split.val_cutoff <= cfg.horizon_seconds:
        log.warning(
            "the validation period (%.1f h) is not longer than the horizon (%.1f h): its "
            "purchase and return labels are all censored; raise --val-fraction",
            (split.test_cutoff - split.val_cutoff) / 3600,
            cfg.horizon_seconds / 3600,
        )
    log.info(
        "split: train < %s <= validation < %s <= test <= %s",
        split.val_cutoff,
        split.test_cutoff,
        split.end,
    )
    trained = fit(
        cfg,
        events,
        split,
        tz_offset_seconds=data.tz_offset_seconds,
        init_from=init_from,
        progress=progress,
        place=place,
    )
    if not place.leader:
        place.finish()
        return None
    windows = parity_windows(events, split, cfg.window_len, cfg.seed)
    staged = stage(trained, out, parity_windows=windows, int8=int8, progress=progress)
    staged, head_calibration = attach_head(staged, events, split, cfg.seed)
    evaluation = evaluate(staged, events, split, baselines=baselines, progress=progress,
                          sample=eval_sample, sample_seed=eval_seed)
    write_report(out, evaluation, trained.history, head_calibration or trained.calibration,
                 data.report.to_dict(), restored_epoch=trained.stats["best_epoch"])
    manifest = staged.manifest.model_copy(
        update={
            "input_stats": input_stats(events, split, trained.spec, trained.items,
                                       trained.categories),
            "metrics": {
                "n_test_points": evaluation["n_test_points"],
                **{k: v for k, v in evaluation["protocol"].items() if k == "sample"},
                **evaluation["model"],
            },
            "extra": {
                **staged.manifest.extra,
                "split": {**split_cfg.__dict__, **split.__dict__},
                "data": data.report.to_dict(),
            },
        }
    )
    publish(replace(staged, manifest=manifest))
    place.finish()
    return evaluation


def evaluate_artifact(
    artifact: Artifact,
    data: LoadedLog,
    *,
    baselines: bool | list[str] = True,
    progress: bool = True,
    eval_sample: int | None = None,
    eval_seed: int = 0,
) -> dict[str, Any]:
    """Score an artifact on a log with the split it was trained with (on a seeded sample of
    `eval_sample` test points when there are more)."""
    from model.evaluate import evaluate

    fractions = artifact.manifest.extra.get("split", {})
    split_cfg = SplitConfig(
        test_fraction=float(fractions.get("test_fraction", SplitConfig.test_fraction)),
        val_fraction=float(fractions.get("val_fraction", SplitConfig.val_fraction)),
    )
    return evaluate(
        artifact, data.log, split_cfg.apply(data.log), baselines=baselines, progress=progress,
        sample=eval_sample, sample_seed=eval_seed,
    )


def build_demo_artifact(
    out: Path, *, users: int = 300, preset: str = "tiny", seed: int = 0, progress: bool = False,
    eval_sample: int | None = None,
) -> Path:
    """A small model trained on synthetic shoppers: the service's out-of-the-box default and the
    test suite's real artifact (evaluated on a seeded sample of `eval_sample` test points when
    there are more)."""
    from model.data import load_log
    from model.synth import write_csv
    from model.train import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "synthetic.csv"
        write_csv(csv, users, seed)
        data = load_log(csv, "taobao", progress=progress)
    cfg = TrainConfig.preset(preset, seed=seed)
    train_artifact(data, out, cfg, baselines=False, progress=progress, eval_sample=eval_sample)
    return out
