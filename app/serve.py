"""`serve()`: run the service under uvicorn (what `seqcast serve` calls).

With several workers every process must share one Redis and one metrics directory, so the
parent starts the embedded redis-server (when no URL is given) and a Prometheus
multiprocess directory, and hands both to the workers through the environment.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

import uvicorn

from app.embedded_redis import EmbeddedRedis
from app.logs import configure_logging
from app.main import create_app
from app.settings import Settings

log = logging.getLogger(__name__)

# uvicorn restarts a worker that does not answer its supervisor's ping in time (default 5 s).
# A worker answers from a thread that needs the GIL, and one still importing NumPy / ONNX
# Runtime or checking its model may hold it for a while on a busy machine. Headroom: such a
# restart was suspected once, never observed.
WORKER_HEALTHCHECK_SECONDS = 30


def _supervise_forever(server: EmbeddedRedis, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            server.ensure_running()
        except RuntimeError:
            log.exception("could not restart the embedded redis-server; retrying")


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
    settings = Settings()
    configure_logging(settings.log_level)
    if workers <= 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None,
                    access_log=False)
        return

    embedded: EmbeddedRedis | None = None
    stop = threading.Event()
    if settings.redis_url is None:
        embedded = EmbeddedRedis(Path(settings.data_dir))
        embedded.start()
        os.environ["SEQCAST_REDIS_URL"] = embedded.url
        threading.Thread(
            target=_supervise_forever, args=(embedded, stop), daemon=True, name="seqcast-redis"
        ).start()
    with tempfile.TemporaryDirectory(prefix="seqcast-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        try:
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
        finally:
            stop.set()
            if embedded is not None:
                embedded.stop()
