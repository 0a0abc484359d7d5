"""The report's Markdown: model vs baselines side by side, per class, calibration, training
and the data report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from model.evaluation.scoring import NDCG_K, RECALL_K
from model.features import BEHAVIOR_NAMES
from model.report.data import data_md
from model.report.inputs import number, total_loss

# (head, metric, label, higher is better)
TABLE_ROWS = (
    ("next_behavior", "macro_auc", "next behavior: macro AUC", True),
    ("next_behavior", "log_loss", "next behavior: log loss", False),
    ("next_behavior", "accuracy", "next behavior: accuracy", True),
    ("next_behavior", "macro_f1", "next behavior: macro F1", True),
    ("purchase", "auc", "purchase: ROC AUC", True),
    ("purchase", "pr_auc", "purchase: PR AUC", True),
    ("purchase", "log_loss", "purchase: log loss", False),
    ("purchase", "ece", "purchase: ECE", False),
    ("return", "auc", "return: ROC AUC", True),
    ("return", "log_loss", "return: log loss", False),
    ("next_item", f"recall@{RECALL_K}", f"next item: Recall@{RECALL_K}", True),
    ("next_item", f"ndcg@{NDCG_K}", f"next item: NDCG@{NDCG_K}", True),
    ("next_item", "unseen_rate", "next item: unseen target rate", False),
    ("next_category", f"recall@{RECALL_K}", f"next category: Recall@{RECALL_K}", True),
    ("next_category", f"ndcg@{NDCG_K}", f"next category: NDCG@{NDCG_K}", True),
    ("next_category", "unseen_rate", "next category: unseen target rate", False),
)


def _fmt(value: Any) -> str:
    v = number(value)
    return "—" if v is None else f"{v:.4f}"


def _columns(evaluation: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    cols: dict[str, Mapping[str, Any]] = {"model": evaluation.get("model", {})}
    if "model_int8" in evaluation:  # the quantized sibling, next to what it approximates
        cols["model int8"] = evaluation["model_int8"]
    cols.update(evaluation.get("baselines", {}))
    return cols


def comparison_table(evaluation: Mapping[str, Any]) -> str:
    """Markdown table, one row per metric, model and baselines side by side; the best value
    of each row in bold (a head a baseline does not answer shows —)."""
    cols = _columns(evaluation)
    names = list(cols)
    lines = [
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for head, metric, label, higher in TABLE_ROWS:
        values = [number(cols[n].get(head, {}).get(metric)) for n in names]
        present = [v for v in values if v is not None]
        if not present:
            continue
        best = max(present) if higher else min(present)
        cells = [
            "—" if v is None else (f"**{v:.4f}**" if v == best and len(present) > 1 else f"{v:.4f}")
            for v in values
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _when(ts: Any) -> str:
    v = number(ts)
    if v is None:
        return "—"
    return datetime.fromtimestamp(v, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _protocol_md(evaluation: Mapping[str, Any]) -> list[str]:
    p = evaluation.get("protocol", {})
    split = p.get("split", {})
    sample = p.get("sample")
    total = sample["of"] if sample else evaluation.get("n_test_points", "—")
    sampled = (
        [f"- Scored on a seeded sample: **{sample['n']}** of the {sample['of']} test points "
         f"(seed {sample['seed']}), the same points for every model; every figure below is "
         "on the sample."]
        if sample
        else []
    )
    return [
        "## Protocol",
        "",
        f"- Test points: **{total}** — every event from the test "
        f"cutoff ({_when(split.get('test_cutoff'))}) to the end of the log "
        f"({_when(split.get('end'))}), each predicted from the events before it "
        f"(window {p.get('window_len', '—')}).",
        *sampled,
        f"- Training used events before {_when(split.get('val_cutoff'))}; validation (early "
        "stopping, calibration) the events up to the test cutoff. Baselines are fitted on "
        "everything before the test cutoff.",
        f"- Purchase / return horizon {p.get('horizon_seconds', '—')} s; labels whose horizon "
        "runs past the end of the log are censored and excluded.",
        f"- Next item / category: full ranking over {p.get('n_items', '—')} items and "
        f"{p.get('n_categories', '—')} categories; targets outside a model's vocabulary are "
        "misses; ties take the expected rank.",
        *_ann_md(evaluation),
        "",
    ]


def _ann_md(evaluation: Mapping[str, Any]) -> list[str]:
    """The line on the model's approximate item search, when its artifact has one."""
    recall = number(evaluation.get("model", {}).get("next_item", {}).get("ann_recall@20"))
    if recall is None:
        return []
    return [f"- The model's items are ranked as served, through its approximate item index "
            f"(faiss HNSW): it finds {recall:.4f} of the exact top 20 (recall@20 against "
            "exact search, on the test points)."]


def _per_class_md(evaluation: Mapping[str, Any]) -> list[str]:
    cols = _columns(evaluation)
    names = [n for n in cols if "per_class_auc" in cols[n].get("next_behavior", {})]
    if not names:
        return []
    lines = [
        "### Next behavior: one-vs-rest AUC per class",
        "",
        "| class | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for cls in BEHAVIOR_NAMES:
        cells = [_fmt(cols[n]["next_behavior"]["per_class_auc"].get(cls)) for n in names]
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _calibration_md(calibration: Mapping[str, Any], model: Mapping[str, Any]) -> list[str]:
    chosen = calibration.get("chosen", {})
    heads = [h for h in ("behavior", "purchase", "return") if h in calibration.get("before", {})]
    if not heads:
        return ["## Calibration", "", "No calibration was fitted.", ""]
    lines = [
        "## Calibration",
        "",
        "Each head's map is fitted on one half of the validation points and chosen, by ECE, "
        "on the other (held-apart) half, among none, temperature, temperature + bias and "
        "(binary heads) isotonic; ECE with 15 equal-width bins (behavior: top-label).",
        "",
        "| head | chosen | ECE held-apart before | after | ECE test before | after | "
        "candidates (held-apart ECE) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    test_keys = {"behavior": ("next_behavior", "ece_top_label"), "purchase": ("purchase", "ece"),
                 "return": ("return", "ece")}
    for head in heads:
        before = calibration["before"][head].get("ece")
        after = calibration.get("after", {}).get(head, {}).get("ece")
        section, key = test_keys[head]
        test = model.get(section, {})
        tried = ", ".join(f"{kind} {_fmt(ece)}"
                          for kind, ece in calibration.get("candidates", {}).get(head, {}).items())
        lines.append(
            f"| {head} | {chosen.get(head, '-')} | {_fmt(before)} | {_fmt(after)} | "
            f"{_fmt(test.get(key + '_uncalibrated'))} | {_fmt(test.get(key))} | {tried} |"
        )
    return [*lines, ""]


def _training_md(history: list[Mapping[str, Any]], restored_epoch: int | None) -> list[str]:
    if not history:
        return []
    lines = [
        "## Training",
        "",
        "Loss: the weighted sum of the heads' losses that training minimizes and early "
        "stopping compares on the validation points"
        + ("" if restored_epoch is None else f"; the model is epoch {restored_epoch}'s, "
           "restored at the end (its validation loss is the lowest)") + ".",
        "",
        "| epoch | train loss | validation loss | events/s |",
        "|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(history):
        epoch = r.get("epoch", i + 1)
        rate = number(r.get("events_per_s"))
        mark = f"**{epoch}** (restored)" if epoch == restored_epoch else f"{epoch}"
        lines.append(
            f"| {mark} | {_fmt(total_loss(r, 'train'))} | {_fmt(total_loss(r, 'val'))} | "
            f"{'—' if rate is None else f'{rate:,.0f}'} |"
        )
    return [*lines, ""]


def render_markdown(
    evaluation: Mapping[str, Any],
    history: list[Mapping[str, Any]],
    calibration: Mapping[str, Any],
    data_report: Mapping[str, Any] | None,
    restored_epoch: int | None = None,
) -> str:
    lines = [
        "# seqcast model report",
        "",
        *_protocol_md(evaluation),
        "## Model vs baselines (test points)",
        "",
        "Best of each row in bold. log loss, ECE and unseen rate: lower is better.",
        "",
        comparison_table(evaluation),
        "",
        *_per_class_md(evaluation),
        "![confusion matrix](confusion_matrix.png)",
        "",
        *_calibration_md(calibration, evaluation.get("model", {})),
        "![reliability](reliability.png)",
        "",
        *_training_md(history, restored_epoch),
        "![training curves](training_curves.png)",
        "",
        "## Data",
        "",
        *data_md(data_report),
        "",
    ]
    return "\n".join(lines)
