"""`serve()`: run the service under uvicorn (what `seqcast serve` calls).

The parent process owns what must outlive a worker and exist once: the embedded
redis-server (when no URL is given), started before uvicorn so that a refused data
directory is one line of the CLI and not a failed lifespan, and, with several workers, the
Prometheus multiprocess directory, handed to the workers through the environment. With
that directory (several workers, or one given) the parent also forgets the live gauges of
a worker that exited (uvicorn replaces a dead worker), and serves SEQCAST_METRICS_PORT over
every worker's values.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from app.embedded_redis import EmbeddedRedis
from app.logs import configure_logging
from app.main import create_app
from app.metrics import (
    forget_dead_workers,
    multiprocess_dir,
    multiprocess_registry,
    serve_metrics,
)
from app.settings import Settings, load_settings

# uvicorn restarts a worker that does not answer its supervisor's ping in time (default 5 s).
# A worker answers from a thread that needs the GIL, and one still importing NumPy / ONNX
# Runtime or checking its model may hold the GIL for seconds on a busy machine: a starting
# worker must not be killed for being slow to start.
WORKER_HEALTHCHECK_SECONDS = 30
FORGET_DEAD_WORKERS_SECONDS = 1.0


def serve(
    artifact: Path | None,
    redis_url: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """Serve until interrupted. `artifact`/`redis_url` override SEQCAST_ARTIFACT_DIR and
    SEQCAST_REDIS_URL; the other settings come from the environment."""
    if artifact is not None:
        os.environ["SEQCAST_ARTIFACT_DIR"] = str(artifact)
    if redis_url is not None:
        os.environ["SEQCAST_REDIS_URL"] = redis_url
    settings = load_settings()
    configure_logging(settings.log_level)
    embedded: EmbeddedRedis | None = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis.started(Path(settings.data_dir))
        os.environ["SEQCAST_REDIS_URL"] = embedded.url
    try:
        if workers <= 1 and multiprocess_dir() is None:
            uvicorn.run(create_app(load_settings()), host=host, port=port, log_config=None,
                        access_log=False)
        else:
            _serve_workers(settings, host, port, workers)
    finally:
        if embedded is not None:
            embedded.stop()


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="seqcast-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        with _worker_metrics(settings, directory):
            uvicorn.run(
                "app.main:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                log_config=None,
                access_log=False,
            )


@contextlib.contextmanager
def _worker_metrics(settings: Settings, directory: str) -> Iterator[None]:
    """While the workers serve: forget the gauges of the dead ones, from a thread (uvicorn's
    supervisor offers no hook on a worker's exit), and serve the metrics port."""
    done = threading.Event()

    def forget() -> None:
        while not done.wait(FORGET_DEAD_WORKERS_SECONDS):
            forget_dead_workers(directory)

    thread = threading.Thread(target=forget, daemon=True, name="seqcast-metrics-gc")
    thread.start()
    stop_metrics = None
    if settings.metrics_port is not None:
        stop_metrics = serve_metrics(multiprocess_registry(directory), settings.metrics_host,
                                     settings.metrics_port)
    try:
        yield
    finally:
        done.set()
        thread.join()
        if stop_metrics is not None:
            stop_metrics()
        forget_dead_workers(directory)
