"""Prometheus metrics, defined once, registered in an injectable registry.

Each `create_app` gets its own `Metrics` (tests pass a fresh `CollectorRegistry`). With
`PROMETHEUS_MULTIPROC_DIR` set (several uvicorn workers) the values go to that directory
and `/metrics` aggregates every worker through `MultiProcessCollector`.
"""

from __future__ import annotations

import os
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
WINDOW_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "multiprocess_dir"]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


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
        self.model_ready = gauge("seqcast_model_ready", "1 when a model is loaded.", "livemin")
        self.redis_up = gauge(
            "seqcast_redis_up", "1 when the last Redis call succeeded.", "livemin"
        )
        self.purchase_probability = histogram(
            "seqcast_purchase_probability",
            "Purchase probabilities served (cold-start priors included).",
            PROBABILITY_BUCKETS,
        )

    def exposition(self) -> bytes:
        """The text format for /metrics: every worker's values in multiprocess mode."""
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
