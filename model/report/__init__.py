"""The report in an artifact: metrics JSON, a Markdown summary and PNG plots.

    ARTIFACT_DIR/report/
        metrics.json            the evaluation (the `seqcast evaluate --json` object) plus
                                "training" {history, calibration} and "data" (cleaning report)
        report.md               model vs baselines side by side, calibration, training, data
        training_curves.png     train / validation loss per head and epoch
        reliability.png         reliability diagrams before / after calibration (validation)
                                and on the test points, purchase head and behavior confidence
        confusion_matrix.png    next behavior on the test points, row-normalized

Inputs, as `model.train.fit` produces them:
    history      list of per-epoch dicts {"epoch", "train_loss", "val_loss", ...} where the
                 losses are per-head dicts (or plain floats), optionally "train_total",
                 "val_total", "events_per_s"; or a dict {"epochs": [...], ...}
    calibration  `model.calibrate.Calibration` or its `to_dict()`: {"chosen": {head: kind},
                 "calibrators": ..., "candidates": {head: {kind: held-apart ECE}},
                 "before": {head: reliability}, "after": {head: reliability}} with reliability
                 as `model.metrics.Reliability.to_dict()`; heads "behavior", "purchase", ...
"""

from model.report.markdown import comparison_table, render_markdown
from model.report.write import REPORT_DIR, write_report

__all__ = ["REPORT_DIR", "comparison_table", "render_markdown", "write_report"]
