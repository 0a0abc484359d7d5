"""Writing ARTIFACT_DIR/report/ (the layout is in the package docstring)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.artifact import REPORT_DIR
from model.features import N_BEHAVIORS
from model.report.inputs import calibration_dict, epochs
from model.report.markdown import render_markdown
from model.report.plots import plot_confusion, plot_reliability, plot_training_curves

logger = logging.getLogger(__name__)



def write_report(
    out_dir: Path,
    evaluation: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    calibration: Any,
    data_report: Mapping[str, Any] | None,
    restored_epoch: int | None = None,
) -> None:
    """Write out_dir/report/: metrics.json, report.md and the PNG plots. restored_epoch:
    the epoch whose weights early stopping kept, marked in the table and the curves."""
    out = Path(out_dir) / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    records = epochs(history)
    calib = calibration_dict(calibration)
    metrics = {
        **evaluation,
        "training": {"history": records, "restored_epoch": restored_epoch, "calibration": calib},
        "data": data_report,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_jsonable))
    plot_training_curves(records, out / "training_curves.png", restored_epoch)
    plot_reliability(calib, evaluation, out / "reliability.png")
    matrix = evaluation.get("model", {}).get("next_behavior", {}).get("confusion_matrix")
    empty = np.zeros((N_BEHAVIORS, N_BEHAVIORS))
    plot_confusion(matrix if matrix else empty, out / "confusion_matrix.png")
    markdown = render_markdown(evaluation, records, calib, data_report, restored_epoch)
    (out / "report.md").write_text(markdown)
    logger.info("report written to %s", out)


def _jsonable(value: Any) -> Any:
    """numpy scalars / arrays in the inputs -> plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
