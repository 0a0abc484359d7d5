"""Events are ingested while no model is loaded (a first deploy, a refused artifact): the
window length is SEQCAST_WINDOW_LENGTH until a model brings its own; only what needs the
model (predictions) answers 503."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from app.store.keys import window_key

pytestmark = pytest.mark.slow


def test_ingest_needs_no_model(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: Callable[..., Any], events: Callable[[str, int], dict[str, Any]],
    demo_artifact: Path, tmp_path: Path, redis_url: str, key_prefix: str,
) -> None:
    artifact = tmp_path / "artifact"
    artifact.mkdir()  # the directory is there, the model is not (yet)
    app = create_app(make_settings(artifact_dir=artifact, window_length=3), registry)
    with live_server(app) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/readyz").json()["model"] is False
        r = http.post("/v1/events", json=events("early", 5))
        assert r.status_code == 200
        assert r.json()["accepted"] == 5 and r.json()["users"][0]["window_length"] == 3

        with_prediction = http.post("/v1/events?predict=true", json=events("asks", 2))
        assert with_prediction.status_code == 503
        assert with_prediction.json()["error"] == "model_not_ready"
        with redis.Redis.from_url(redis_url) as r_:
            assert r_.zcard(window_key(key_prefix, "asks")) == 0  # refused: nothing written
            assert r_.zcard(window_key(key_prefix, "early")) == 3
        assert http.get("/v1/users/early/prediction").status_code == 503

        shutil.rmtree(artifact)
        shutil.copytree(demo_artifact, artifact)
        assert http.post("/v1/admin/reload", headers={"X-API-Key": "dev-admin-key"}).json()[
            "reloaded"] is True
        prediction = http.get("/v1/users/early/prediction").json()
        assert prediction["cold_start"] is False and prediction["window_length"] == 3
