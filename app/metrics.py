"""Prometheus metrics, defined once, registered in an injectable registry.

Each `create_app` gets its own `Metrics` (tests pass a fresh `CollectorRegistry`). With
`PROMETHEUS_MULTIPROC_DIR` set (several uvicorn workers) the values go to that directory
and `/metrics` aggregates every worker through `MultiProcessCollector`. The `live*` gauges
of a worker that exited are removed from that directory by `forget_dead_workers`, which
`seqcast serve`'s parent runs: a gauge such as `seqcast_model_ready` describes the workers
that serve now.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from app import monitor
from app.processes import running
from app.store.pending import Outcome
from model.artifact import WINDOW_LENGTH_EDGES, Manifest, bin_of
from model.features import BEHAVIOR_NAMES, Event, Vocab

LATENCY_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
WINDOW_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "multiprocess_dir"]

# prometheus_client's file of one process's gauges of a `live*` mode: gauge_livemin_<pid>.db
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_([0-9]+)\.db")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def multiprocess_registry(directory: str) -> CollectorRegistry:
    """A registry that reads every process's values in `directory`, and the live figures
    derived from their sums (`app.monitor`)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    registry.register(monitor.DerivedCollector(
        multiprocess.MultiProcessCollector(None, path=directory).collect
    ))
    return registry


def forget_dead_workers(directory: str) -> list[int]:
    """`mark_process_dead` for each process whose live gauges are in `directory` but that no
    longer runs; the pids it forgot."""
    pids = {int(m.group(1)) for p in Path(directory).iterdir()
            if (m := _LIVE_GAUGE_FILE.fullmatch(p.name))}
    dead = sorted(pid for pid in pids if not running(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return dead


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve `registry` at http://host:port/metrics from a thread; returns its stop."""
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop


class Metrics:
    """Every metric the service exports. Names are a contract with deploy/ and Grafana."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Every definition in one flat list, so the names deploy/ relies on are read in
        one place (long, but one idea)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        def histogram(name: str, doc: str, buckets: tuple[float, ...],
                      labels: tuple[str, ...] = ()) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=r)

        def gauge(name: str, doc: str, mode: Literal["livemin", "livemax"],
                  labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=r, multiprocess_mode=mode)

        self.http_duration = histogram(
            "seqcast_http_request_duration_seconds",
            "HTTP request latency by route template, method and status code.",
            LATENCY_BUCKETS,
            ("route", "method", "status"),
        )
        self.inference_duration = histogram(
            "seqcast_model_inference_duration_seconds",
            "Duration of one model call (featurize + ONNX Runtime) for a micro-batch; "
            "decoding the answers is not included.",
            LATENCY_BUCKETS,
        )
        self.batch_size = histogram(
            "seqcast_model_batch_size",
            "Windows scored per model call (micro-batch size, occlusions included).",
            BATCH_BUCKETS,
        )
        self.events_ingested = Counter(
            "seqcast_events_ingested_total", "Events appended to user windows.", registry=r
        )
        self.events_duplicate = Counter(
            "seqcast_events_duplicate_total",
            "Events ignored because their event_id was already ingested.",
            registry=r,
        )
        self.events_rejected = Counter(
            "seqcast_events_rejected_total",
            "Events refused, by reason (validation, limit, store_unavailable).",
            ["reason"],
            registry=r,
        )
        self.redis_duration = histogram(
            "seqcast_redis_duration_seconds",
            "Redis round trip latency by operation.",
            LATENCY_BUCKETS,
            ("op",),
        )
        self.window_length = histogram(
            "seqcast_window_length",
            "Events in the windows scored for predictions.",
            WINDOW_BUCKETS,
        )
        self.model_info = gauge(
            "seqcast_model_info",
            "1 for the model version and execution provider being served.",
            "livemax",
            ("version", "provider"),
        )
        self.candidate_info = gauge(
            "seqcast_candidate_info",
            "1 for the candidate model version (shadow or A/B arm) and its provider.",
            "livemax",
            ("version", "provider"),
        )
        self.model_ready = gauge("seqcast_model_ready", "1 when a model is loaded.", "livemin")
        self.redis_up = gauge(
            "seqcast_redis_up", "1 when the last Redis call succeeded.", "livemin"
        )
        self.purchase_probability = histogram(
            "seqcast_purchase_probability",
            "Purchase probabilities served (cold-start priors included).",
            PROBABILITY_BUCKETS,
        )
        # Live accuracy (app.monitor derives the figures from these).
        self.live_recorded = Counter(
            monitor.RECORDED, "Served predictions kept to be scored when their outcome "
            "arrives (a sampled share), by model version.", ["version"], registry=r,
        )
        self.live_scored = Counter(
            monitor.SCORED, "Recorded predictions scored against their outcome, by model "
            "version and target (next_behavior, purchase, return).", ["version", "target"],
            registry=r,
        )
        self.live_log_loss = Counter(
            monitor.LOG_LOSS_SUM, "Sum of the log losses of the scored predictions.",
            ["version", "target"], registry=r,
        )
        self.live_correct = Counter(
            monitor.CORRECT, "Scored next-behavior predictions whose most probable behavior "
            "came.", ["version"], registry=r,
        )
        self.live_outcomes = Counter(
            monitor.OUTCOMES, "Scored purchase and return predictions by probability bin "
            "(lower edge) and outcome (positive, negative).",
            ["version", "target", "bin", "outcome"], registry=r,
        )
        self.live_predicted = Counter(
            monitor.PREDICTED_SUM, "Sum of the predicted probabilities of the scored "
            "purchase and return predictions, by probability bin.",
            ["version", "target", "bin"], registry=r,
        )
        self.shadow_predictions = Counter(
            "seqcast_shadow_predictions_total", "Requests the shadow candidate scored too, "
            "off the request path, by its model version.", ["version"], registry=r,
        )
        # Input drift: live counts per bin against the training data's shares.
        self.inputs = Counter(
            monitor.INPUTS, "Inputs observed per feature and bin: behavior, item and "
            "category (known, unknown) of ingested events; window_length and gap (seconds "
            "since the previous event, bins by lower edge) of scored windows.",
            ["version", "feature", "bin"], registry=r,
        )
        self.input_reference = gauge(
            monitor.REFERENCE, "The training data's share of each feature's bin (the "
            "manifest's input statistics).", "livemax", ("version", "feature", "bin"),
        )
        self.model_report = gauge(
            monitor.REPORT, "The training report's figures of each loaded model version.",
            "livemax", ("version", "metric"),
        )
        self._window_bins: dict[str, list[tuple[np.ndarray, list[Any]]]] = {}
        if multiprocess_dir() is None:
            live = (self.live_recorded, self.live_scored, self.live_log_loss,
                    self.live_correct, self.live_outcomes, self.live_predicted, self.inputs,
                    self.input_reference, self.model_report)
            r.register(monitor.DerivedCollector(
                lambda: itertools.chain.from_iterable(m.collect() for m in live)
            ))

    def model_loaded(self, manifest: Manifest) -> None:
        """Export the references of a loaded model: its training report's figures and its
        training data's input shares."""
        version = manifest.model_version
        for target, metric in monitor.REPORT_FIGURES:
            value = manifest.metrics.get(target, {}).get(metric)
            if isinstance(value, int | float) and math.isfinite(value):
                self.model_report.labels(version, f"{target}_{metric}").set(value)
        stats = manifest.input_stats
        if stats is None:
            return
        shares = {
            "behavior": dict(zip(BEHAVIOR_NAMES, stats.behavior, strict=True)),
            "item": {"known": 1 - stats.unknown_item, "unknown": stats.unknown_item},
            "category": {"known": 1 - stats.unknown_category,
                         "unknown": stats.unknown_category},
            "window_length": dict(zip(_edge_labels(stats.window_length_edges, 1),
                                      stats.window_length, strict=True)),
            "gap": dict(zip(_edge_labels(stats.gap_edges, 0), stats.gap, strict=True)),
        }
        for feature, bins in shares.items():
            for label, share in bins.items():
                self.input_reference.labels(version, feature, label).set(share)

    def observe_events(self, version: str, events: Sequence[Event], items: Vocab,
                       categories: Vocab) -> None:
        """Count ingested events' behaviors and whether the model knows their ids."""
        for feature, vocab, ids in (("item", items, [e.item_id for e in events]),
                                    ("category", categories, [e.category_id for e in events])):
            unknown = int(vocab.is_oov(vocab.lookup(ids)).sum())
            if unknown:
                self.inputs.labels(version, feature, "unknown").inc(unknown)
            if len(ids) - unknown:
                self.inputs.labels(version, feature, "known").inc(len(ids) - unknown)
        for code, count in enumerate(_counts(e.behavior for e in events)):
            if count:
                self.inputs.labels(version, "behavior", BEHAVIOR_NAMES[code]).inc(count)

    def observe_windows(self, manifest: Manifest, windows: Iterable[Sequence[Event]]) -> None:
        """Count the scored windows' lengths and newest gaps, binned as the training data."""
        lengths: list[float] = []
        gaps: list[float] = []
        window_len = manifest.features.window_len  # what the model reads of a longer window
        for w in windows:
            if w:
                lengths.append(min(len(w), window_len))
                if len(w) >= 2:
                    gaps.append(w[-1].ts - w[-2].ts)
        binned = self._window_bins.get(manifest.model_version)
        if binned is None:
            binned = self._window_bins[manifest.model_version] = self._bins_of(manifest)
        for values, (edges, counters) in zip((lengths, gaps), binned, strict=True):
            if values:
                for b in bin_of(values, edges).tolist():
                    counters[b].inc()

    def _bins_of(self, manifest: Manifest) -> list[tuple[np.ndarray, list[Any]]]:
        """(edges, the counter of each bin) of window_length and gap, for one version: built
        once, as the labelled counters cost more to look up than the binning."""
        stats = manifest.input_stats
        length_edges = WINDOW_LENGTH_EDGES if stats is None else stats.window_length_edges
        gap_edges = manifest.features.gap_edges_seconds if stats is None else stats.gap_edges
        return [
            (np.asarray(edges), [self.inputs.labels(manifest.model_version, feature, label)
                                 for label in _edge_labels(edges, first)])
            for feature, edges, first in (("window_length", length_edges, 1),
                                          ("gap", gap_edges, 0))
        ]

    def observe_recorded(self, version: str, count: int) -> None:
        if count:
            self.live_recorded.labels(version).inc(count)

    def observe_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Score each outcome against its recorded prediction."""
        for o in outcomes:
            p = o.prediction
            if o.next_behavior is not None:
                prob = p.behavior[o.next_behavior]
                self.live_scored.labels(p.version, "next_behavior").inc()
                self.live_log_loss.labels(p.version, "next_behavior").inc(_log_loss(prob, True))
                if max(range(len(p.behavior)), key=p.behavior.__getitem__) == o.next_behavior:
                    self.live_correct.labels(p.version).inc()
            for target, prob, fired in (("purchase", p.purchase, o.purchased),
                                        ("return", p.returns, o.returned)):
                if fired is None:
                    continue
                b = monitor.probability_bin(prob)
                self.live_scored.labels(p.version, target).inc()
                self.live_log_loss.labels(p.version, target).inc(_log_loss(prob, fired))
                self.live_outcomes.labels(p.version, target, b,
                                          "positive" if fired else "negative").inc()
                self.live_predicted.labels(p.version, target, b).inc(prob)

    def live_figures(self) -> dict[str, dict[str, Any]]:
        """`app.monitor.live_figures` of every worker's counters (this process's alone
        without multiprocess mode)."""
        directory = multiprocess_dir()
        registry = self.registry if directory is None else multiprocess_registry(directory)
        return monitor.live_figures(monitor.samples_of(registry.collect()))

    def exposition(self) -> bytes:
        """The text format for /metrics: every worker's values in multiprocess mode."""
        directory = multiprocess_dir()
        if directory is not None:
            return generate_latest(multiprocess_registry(directory))
        return generate_latest(self.registry)


def _edge_labels(edges: Sequence[float], first: float) -> list[str]:
    """Bin labels of `model.artifact.bin_of` over `edges`: each bin's lower edge (`first`
    for the bin below edges[0])."""
    return [f"{e:g}" for e in (first, *edges)]


def _counts(codes: Iterable[int]) -> list[int]:
    counts = [0] * len(BEHAVIOR_NAMES)
    for code in codes:
        counts[code] += 1
    return counts


def _log_loss(prob: float, fired: bool) -> float:
    """-log of the probability given to what happened, clipped as scikit-learn's log_loss."""
    eps = 1e-15
    p = min(max(prob, eps), 1 - eps)
    return -math.log(p if fired else 1 - p)
