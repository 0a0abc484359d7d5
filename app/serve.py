"""`serve()`: run the service under uvicorn (what `seqcast serve` calls).

With several workers every process must share one Redis and one metrics directory, so the
parent starts the embedded redis-server (when no URL is given) and a Prometheus
multiprocess directory, and hands both to the workers through the environment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import uvicorn

from app.embedded_redis import EmbeddedRedis
from app.logs import configure_logging
from app.main import create_app
from app.settings import Settings

# uvicorn restarts a worker that does not answer its supervisor's ping in time (default 5 s).
# A worker answers from a thread that needs the GIL, and one still importing NumPy / ONNX
# Runtime or checking its model may hold the GIL for seconds on a busy machine: a starting
# worker must not be killed for being slow to start.
WORKER_HEALTHCHECK_SECONDS = 30


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
    if settings.redis_url is None:
        embedded = EmbeddedRedis(Path(settings.data_dir))
        embedded.start()
        embedded.supervise()
        os.environ["SEQCAST_REDIS_URL"] = embedded.url
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
            if embedded is not None:
                embedded.stop()
