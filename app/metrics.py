"""Prometheus metrics, defined once, registered in an injectable registry.

Each `create_app` gets its own `Metrics` (tests pass a fresh `CollectorRegistry`). With
`PROMETHEUS_MULTIPROC_DIR` set (several uvicorn workers) the values go to that directory
and `/metrics` aggregates every worker through `MultiProcessCollector`. The `live*` gauges
of a worker that exited are removed from that directory by `forget_dead_workers`, which
`seqcast serve`'s parent runs: a gauge such as `seqcast_model_ready` describes the workers
that serve now.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

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

from app.processes import running

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
    """A registry that reads every process's values in `directory`."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
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
        directory = multiprocess_dir()
        if directory is not None:
            return generate_latest(multiprocess_registry(directory))
        return generate_latest(self.registry)
