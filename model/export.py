"""Export: a TrainedModel -> an artifact directory the service can load.

`stage` writes model.onnx (the `model.net.scorer.Scorer` graph: calibrated outputs named
`model.artifact.OUTPUT_NAMES`, dynamic batch and time axes), the item vectors and their
search (`model.retrieval.write_item_index`: the exact scan's graph, `model.search_graph`,
and an approximate index above `ANN_MIN_ROWS` known items), vocab.json, checkpoint.pt (for
warm starts) and optionally model.int8.onnx, then runs the parity check: the service's own
path (raw events -> `featurize_windows` -> ONNX Runtime, through `model.runtime.OnnxModel`,
and the item mixture's candidates through `model.retrieval.item_candidates` with exact
search) must agree with PyTorch on real
windows. `publish` writes manifest.json, once and last. A directory without manifest.json
is not an artifact, so a failed export leaves none, and a service watching the directory
sees the artifact only when it is complete, metrics included (`model.pipeline` evaluates
between the two).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.artifact import (
    DYNAMIC_AXES,
    MANIFEST,
    ONNX,
    ONNX_INT8,
    OUTPUT_NAMES,
    OUTPUTS,
    Artifact,
    ItemIndexInfo,
    Manifest,
    load_artifact,
    sha256_of,
    write_manifest,
    write_vocab,
)
from model.errors import SeqcastError
from model.features import INPUT_NAMES, Event, featurize_windows
from model.net.scorer import Scorer, item_vectors
from model.progress import progress_bar
from model.retrieval import ANN_MIN_ROWS, ItemIndex, item_candidates, write_item_index
from model.runtime import OnnxModel
from model.search_graph import item_search_graph
from model.train.checkpoint import CHECKPOINT
from model.train.trained import TrainedModel

logger = logging.getLogger(__name__)

OPSET = 17
PARITY_TOLERANCE = 1e-4
"""Parity tolerance: |onnx - torch| <= PARITY_TOLERANCE * max(1, |torch|), every output.

Both sides compute the same float32 graph; they differ only in kernel choice and summation
order (ONNX Runtime fuses LayerNorm, GELU, attention and MatMul+Add). float32 has a relative
precision of 6e-8; a dot product over d_model terms rounds with an error of order
sqrt(d_model) * 6e-8 relative, and the graph chains about 4 such reductions per layer plus
the output softmaxes, so honest disagreement stays below ~1e-5 relative (observed: ~5e-7).
1e-4 leaves a tenfold margin, while every real defect this check exists to catch - a
featurization difference between trainer and service, a mis-ordered vocabulary, a missing
mask, a calibrator not applied, a traced constant that should have been a dynamic shape -
moves outputs by 1e-2 or more. Relative above 1 because logits and surprises reach tens.
"""


class ExportError(SeqcastError):
    """The exported model does not reproduce PyTorch; no artifact was written."""


def _example_inputs() -> tuple[torch.Tensor, ...]:
    """A (2, 3) batch for tracing, with a padded row so the traced graph sees padding."""
    ones = torch.ones(2, 3, dtype=torch.int64)
    ones[0, 0] = 0
    return tuple(ones.clone() for _ in INPUT_NAMES)


def export_onnx(scorer: Scorer, path: Path) -> None:
    """The Scorer's graph as an ONNX file with dynamic batch and time axes."""
    axes = {name: {0: "batch", 1: "time"} for name in INPUT_NAMES}
    axes.update({
        o.name: {i: axis for i, axis in enumerate(o.axes) if axis in DYNAMIC_AXES}
        for o in OUTPUTS
    })
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, and nn.GRU's
        # tracing warns about batch-size checks; the parity check below is what vouches
        # for the graph, on batch sizes and window lengths other than the traced ones.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*GRU.*", category=UserWarning)
        torch.onnx.export(
            scorer,
            _example_inputs(),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=axes,
        )


PARITY_TOP_K = 20  # the item candidates compared, at least


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)), initial=0.0))


def parity_errors(
    trained: TrainedModel, artifact: Artifact, windows: Sequence[Sequence[Event]],
    *, int8: bool = False,
) -> dict[str, float]:
    """Largest |onnx - torch| / max(1, |torch|) per output on these raw-event windows, and
    as "item_mixture" that of the log-probabilities of the served item candidates (exact
    search) against PyTorch's mixture over the whole vocabulary."""
    onnx_out = OnnxModel(artifact, int8=int8).score(windows)
    features = featurize_windows(windows, trained.spec, trained.items, trained.categories)
    torch_out = trained.predict(features)
    errors = {name: _relative(onnx_out[name], torch_out[name]) for name in OUTPUT_NAMES}
    found = item_candidates(ItemIndex.open(artifact), onnx_out["item_query"], onnx_out["item_gate"],
                            onnx_out["item_copy"], features["item"], PARITY_TOP_K, exact=True)
    want = trained.item_logp(features, found.rows.clip(min=0))
    valid = found.rows >= 0
    errors["item_mixture"] = _relative(np.log(np.maximum(found.prob[valid], 1e-30)),
                                       want[valid])
    return errors


def _quantize(out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs an INFO line per tensor, and a WARNING advising its own shape
    # pre-processing on every call, through the root logger (`logging.info`); a filter on
    # the root logger sees only the records logged there, so ours still pass.
    root = logging.getLogger()
    root.addFilter(_errors_only)
    try:
        quantize_dynamic(str(out / ONNX), str(out / ONNX_INT8), weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(_errors_only)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _manifest(trained: TrainedModel, out: Path, int8: bool, index: ItemIndexInfo) -> Manifest:
    """The staged files' manifest, before the evaluation's metrics and the parity figures."""
    sha = sha256_of(out / ONNX)
    now = datetime.now(UTC)
    return Manifest(
        model_version=f"{now:%Y%m%dT%H%M%SZ}-{sha[:8]}",
        trained_at=now.isoformat(timespec="seconds"),
        features=trained.spec,
        horizon_seconds=trained.cfg.horizon_seconds,
        return_gap_seconds=trained.cfg.return_gap_seconds,
        priors=trained.priors,
        surprise_quantiles=list(trained.surprise_quantiles),
        anomaly_quantiles=trained.anomaly_quantiles,
        calibration=trained.calibration.manifest_entry(),
        calibrators=trained.calibration.calibrators,
        metrics={},  # the evaluation's, filled in by `model.pipeline.train_artifact`
        parity_tolerance=PARITY_TOLERANCE,
        onnx_sha256=sha,
        item_index=index,
        has_int8=int8,
        onnx_int8_sha256=sha256_of(out / ONNX_INT8) if int8 else None,
        extra={
            "net": trained.net.cfg.model_dump(by_alias=True),
            "train_config": trained.cfg.to_dict(),
            "train_stats": trained.stats,
        },
    )


def stage(
    trained: TrainedModel,
    out: Path,
    *,
    parity_windows: list[list[Event]],
    int8: bool = False,
    ann: bool | None = None,
    progress: bool = False,
) -> Artifact:
    """Write every file of the artifact but its manifest into `out`, check parity, and return
    the artifact with the manifest `publish` is to write (its metrics still empty). Raises
    ExportError when ONNX Runtime and PyTorch disagree beyond PARITY_TOLERANCE. `ann`
    ships the approximate item index (default: from ANN_MIN_ROWS known items on).

    Until `publish`, `out` holds no manifest.json, so no service loads it; the evaluator
    can already score the staged artifact, and its metrics go into the one manifest written.
    """
    if not parity_windows or any(len(w) == 0 for w in parity_windows):
        raise ValueError("export needs non-empty parity windows (real windows of raw events)")
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # from here until publish, not an artifact
    steps = ["ONNX graph", "item index", "checkpoint", *(["int8"] * int8), "parity check"]
    bar = progress_bar(total=len(steps), desc="export", unit="step", show=progress, leave=False)

    def step() -> None:  # the step just done; the bar names the next one
        bar.update()
        if bar.n < len(steps):
            bar.set_postfix_str(steps[bar.n])

    bar.set_postfix_str(steps[0])
    scorer = trained.scorer()
    export_onnx(scorer, out / ONNX)
    step()
    index = write_item_index(
        out, item_vectors(scorer.net).numpy(), trained.items.first_oov, item_search_graph(),
        ann=trained.items.n_known >= ANN_MIN_ROWS if ann is None else ann,
        seed=trained.cfg.seed,
    )
    step()
    write_vocab(out, trained.items, trained.categories)
    trained.save_checkpoint(out / CHECKPOINT)
    step()
    if int8:
        _quantize(out)
        step()
    manifest = _manifest(trained, out, int8, index)
    artifact = Artifact(path=out, manifest=manifest, items=trained.items,
                        categories=trained.categories)
    errors = parity_errors(trained, artifact, parity_windows)
    bar.close()
    worst = max(errors, key=lambda k: errors[k])
    if errors[worst] > PARITY_TOLERANCE:
        raise ExportError(
            f"ONNX parity failed on {len(parity_windows)} windows: {worst} differs by "
            f"{errors[worst]:.3g} (relative), tolerance {PARITY_TOLERANCE:g}; all: {errors}"
        )
    extra: dict[str, Any] = {"parity_max_error": errors, "parity_windows": len(parity_windows)}
    if int8:
        # Quantization changes the numbers by design: recorded, not enforced.
        extra["int8_max_error"] = parity_errors(trained, artifact, parity_windows, int8=True)
    logger.info("staged %s in %s (parity max error %.2g)", manifest.model_version, out,
                errors[worst])
    return replace(artifact, manifest=manifest.model_copy(
        update={"extra": {**manifest.extra, **extra}}
    ))


def publish(artifact: Artifact) -> Artifact:
    """Write the staged artifact's manifest, the last file and the only write of it, and
    return the artifact as a service would load it."""
    write_manifest(artifact.path, artifact.manifest)
    logger.info("exported %s to %s", artifact.manifest.model_version, artifact.path)
    return load_artifact(artifact.path)

