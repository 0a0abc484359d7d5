"""Live figures from the outcome counters: accuracy, log loss, calibration, AUC, input drift.

The service counts raw facts per model version (`app.metrics`: predictions recorded and
scored, log-loss sums, outcomes per probability bin, inputs per bin, and the training
report's figures and input shares as reference gauges). Everything derived from them is
computed here, from the counters as Prometheus collects them: with several workers that is
their sum over every worker (prometheus_client's multiprocess files), so a derived figure
is the whole service's, never one worker's. `DerivedCollector` exports them on /metrics;
`GET /v1/model/live` returns the same figures next to the training report's.

The figures cover every prediction scored since the service started; Prometheus's
`increase()` over the raw counters gives windowed ones (the Grafana dashboard uses both).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Names of the raw series (the counters' sample names carry `_total`).
RECORDED = "seqcast_live_predictions_recorded"
SCORED = "seqcast_live_predictions_scored"
LOG_LOSS_SUM = "seqcast_live_log_loss_sum"
CORRECT = "seqcast_live_next_behavior_correct"
OUTCOMES = "seqcast_live_outcomes"
PREDICTED_SUM = "seqcast_live_predicted_probability_sum"
INPUTS = "seqcast_input_observed"
REPORT = "seqcast_model_report"
REFERENCE = "seqcast_input_reference_share"

TARGETS = ("next_behavior", "purchase", "return")
BINARY_TARGETS = ("purchase", "return")
PROBABILITY_BINS = 20
# The training report's figures a live one is compared with, as `REPORT`'s metric label.
REPORT_FIGURES = (
    ("next_behavior", "log_loss"), ("next_behavior", "accuracy"),
    ("purchase", "log_loss"), ("purchase", "auc"), ("purchase", "ece"),
    ("return", "log_loss"), ("return", "auc"), ("return", "ece"),
)
# A PSI needs this many live observations of a feature before it says anything.
MIN_DRIFT_OBSERVATIONS = 100
PSI_FLOOR = 1e-4  # shares below this count as this in the PSI (an empty bin is not infinite)


def probability_bin(p: float) -> str:
    """The bin label of a probability: its bin's lower edge, "0.00" .. "0.95"."""
    return f"{min(int(p * PROBABILITY_BINS), PROBABILITY_BINS - 1) / PROBABILITY_BINS:.2f}"


Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples_of(families: Iterable[Metric]) -> Samples:
    """Every sample of the families, by sample name: (labels, value)."""
    out: Samples = defaultdict(list)
    for family in families:
        for s in family.samples:
            out[s.name].append((s.labels, s.value))
    return out


def _sum_by(samples: Samples, name: str, *keys: str, **match: str) -> dict[tuple[str, ...], float]:
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        if all(labels.get(k) == v for k, v in match.items()):
            totals[tuple(labels.get(k, "") for k in keys)] += value
    return totals


def auc_of_bins(positives: list[float], negatives: list[float]) -> float | None:
    """The AUC of scores binned alike for positives and negatives (ties within a bin count
    one half): P(a positive's score > a negative's). None without both classes."""
    n_pos, n_neg = sum(positives), sum(negatives)
    if n_pos == 0 or n_neg == 0:
        return None
    below, area = 0.0, 0.0
    for pos, neg in zip(positives, negatives, strict=True):
        area += pos * (below + 0.5 * neg)
        below += neg
    return area / (n_pos * n_neg)


def psi(reference: list[float], counts: list[float]) -> float | None:
    """Population stability index of live counts against reference shares (same bins)."""
    total = sum(counts)
    if total < MIN_DRIFT_OBSERVATIONS or len(reference) != len(counts):
        return None
    value = 0.0
    for expected, count in zip(reference, counts, strict=True):
        e, o = max(expected, PSI_FLOOR), max(count / total, PSI_FLOOR)
        value += (o - e) * math.log(o / e)
    return value


def _binary_figures(samples: Samples, version: str, target: str, n: float) -> dict[str, Any]:
    outcomes = _sum_by(samples, OUTCOMES + "_total", "bin", "outcome", version=version,
                       target=target)
    predicted = _sum_by(samples, PREDICTED_SUM + "_total", "bin", version=version,
                        target=target)
    bins = [probability_bin((i + 0.5) / PROBABILITY_BINS) for i in range(PROBABILITY_BINS)]
    pos = [outcomes.get((b, "positive"), 0.0) for b in bins]
    neg = [outcomes.get((b, "negative"), 0.0) for b in bins]
    curve, ece = [], 0.0
    for b, p, q in zip(bins, pos, neg, strict=True):
        count = p + q
        if count:
            mean = predicted.get((b,), 0.0) / count
            curve.append({"bin": b, "count": count, "predicted": mean, "observed": p / count})
            ece += count / n * abs(mean - p / count)
    return {"ece": ece, "auc": auc_of_bins(pos, neg), "positive_rate": sum(pos) / n,
            "reliability": curve}


def _drift(samples: Samples, version: str) -> dict[str, Any]:
    observed = _sum_by(samples, INPUTS + "_total", "feature", "bin", version=version)
    reference = _sum_by(samples, REFERENCE, "feature", "bin", version=version)
    features = sorted({f for f, _ in observed} | {f for f, _ in reference})
    out: dict[str, Any] = {}
    for feature in features:
        bins = [b for f, b in reference if f == feature]
        counts = {b: v for (f, b), v in observed.items() if f == feature}
        total = sum(counts.values())
        entry: dict[str, Any] = {
            "observations": total,
            "psi": psi([reference[(feature, b)] for b in bins], [counts.get(b, 0.0) for b in bins]),
        }
        if feature in ("item", "category"):
            entry["unknown_share"] = counts.get("unknown", 0.0) / total if total else None
        out[feature] = entry
    return out


def live_figures(samples: Samples) -> dict[str, dict[str, Any]]:
    """Per model version: the live figures, and the training report's beside them."""
    recorded = _sum_by(samples, RECORDED + "_total", "version")
    scored = _sum_by(samples, SCORED + "_total", "version", "target")
    losses = _sum_by(samples, LOG_LOSS_SUM + "_total", "version", "target")
    correct = _sum_by(samples, CORRECT + "_total", "version")
    report = _sum_by(samples, REPORT, "version", "metric")
    versions = sorted({v for (v,) in recorded} | {v for v, _ in scored} | {v for v, _ in report})
    figures: dict[str, dict[str, Any]] = {}
    for version in versions:
        n_recorded = recorded.get((version,), 0.0)
        live: dict[str, Any] = {}
        for target in TARGETS:
            n = scored.get((version, target), 0.0)
            if not n:
                continue
            entry: dict[str, Any] = {"scored": n, "log_loss": losses[(version, target)] / n}
            if target == "next_behavior":
                entry["accuracy"] = correct.get((version,), 0.0) / n
            else:
                entry.update(_binary_figures(samples, version, target, n))
            live[target] = entry
        scored_nb = scored.get((version, "next_behavior"), 0.0)
        figures[version] = {
            "recorded": n_recorded,
            "scored_share": scored_nb / n_recorded if n_recorded else None,
            "live": live,
            "training": {
                target: {m: report[(version, f"{target}_{m}")] for t, m in REPORT_FIGURES
                         if t == target and (version, f"{target}_{m}") in report}
                for target in TARGETS
            },
            "drift": _drift(samples, version),
        }
    return figures


# The derived gauges: name -> (help, labels).
DERIVED = {
    "seqcast_live_scored_share": (
        "Share of the recorded predictions whose next behavior was scored.", ("version",)),
    "seqcast_live_log_loss": (
        "Mean log loss of the scored predictions.", ("version", "target")),
    "seqcast_live_accuracy": (
        "Share of scored next-behavior predictions whose most probable behavior came.",
        ("version",)),
    "seqcast_live_ece": (
        "Expected calibration error over the probability bins.", ("version", "target")),
    "seqcast_live_auc": (
        "AUC from the binned scores of positives and negatives.", ("version", "target")),
    "seqcast_input_drift_psi": (
        "Population stability index of live inputs against the training data.",
        ("version", "feature")),
    "seqcast_input_unknown_share": (
        "Share of ingested events whose id the model does not know.", ("version", "feature")),
}


def _derived_values(figures: dict[str, dict[str, Any]]) -> Iterator[tuple[str, list[str], float]]:
    """(gauge, label values, value) of every derived figure that has a value."""
    for version, f in figures.items():
        if f["scored_share"] is not None:
            yield "seqcast_live_scored_share", [version], f["scored_share"]
        for target, entry in f["live"].items():
            yield "seqcast_live_log_loss", [version, target], entry["log_loss"]
            if "accuracy" in entry:
                yield "seqcast_live_accuracy", [version], entry["accuracy"]
            if "ece" in entry:
                yield "seqcast_live_ece", [version, target], entry["ece"]
            if entry.get("auc") is not None:
                yield "seqcast_live_auc", [version, target], entry["auc"]
        for feature, entry in f["drift"].items():
            if entry["psi"] is not None:
                yield "seqcast_input_drift_psi", [version, feature], entry["psi"]
            if entry.get("unknown_share") is not None:
                yield "seqcast_input_unknown_share", [version, feature], entry["unknown_share"]


class DerivedCollector(Collector):
    """The derived live figures (`DERIVED`) as gauges, computed at each collection from
    `source`: the raw families, summed over every worker in multiprocess mode."""

    def __init__(self, source: Callable[[], Iterable[Metric]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        families = {name: GaugeMetricFamily(name, doc, labels=list(labels))
                    for name, (doc, labels) in DERIVED.items()}
        for name, labels, value in _derived_values(live_figures(samples_of(self._source()))):
            families[name].add_metric(labels, value)
        yield from families.values()
