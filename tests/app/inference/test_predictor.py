"""The predictor's life over real HTTP: hot reload swaps good artifacts and refuses broken
ones; with no artifact the service is not ready until one arrives."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from model.artifact import MANIFEST, ONNX, load_artifact, sha256_of

pytestmark = pytest.mark.slow

LiveServerFactory = Callable[..., Any]

def republish(artifact: Path, version: str, onnx_bytes: bytes | None = None) -> None:
    """Write a new artifact in place the way the exporter does: model first, manifest last."""
    if onnx_bytes is not None:
        (artifact / ONNX).write_bytes(onnx_bytes)
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["model_version"] = version
    manifest["onnx_sha256"] = sha256_of(artifact / ONNX)
    tmp = artifact / "manifest.tmp"
    tmp.write_text(json.dumps(manifest))
    tmp.replace(artifact / MANIFEST)

def test_hot_reload_swaps_good_artifacts_and_refuses_broken_ones(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: LiveServerFactory, demo_artifact: Path, tmp_path: Path,
    events: Callable[..., Any], wait_until: Callable[..., Any],
) -> None:
    artifact = tmp_path / "served"
    shutil.copytree(demo_artifact, artifact)
    original = load_artifact(artifact).manifest.model_version
    good_onnx = (artifact / ONNX).read_bytes()
    admin = {"X-API-Key": "admin-1"}
    settings = make_settings(artifact_dir=artifact, reload_poll_seconds=0.1, admin_key="admin-1")
    app = create_app(settings, registry)
    with live_server(app) as server, httpx.Client(base_url=server.url) as http:
        http.post("/v1/events", json=events("h", 5))

        def version() -> str:
            r = http.get("/v1/users/h/prediction")
            assert r.status_code == 200
            return str(r.json()["model_version"])

        # A model file that no longer matches the manifest's checksum.
        (artifact / ONNX).write_bytes(good_onnx[:-10])
        refused = http.post("/v1/admin/reload", params={"force": True}, headers=admin)
        assert refused.status_code == 409 and "checksum" in refused.json()["message"]
        assert version() == original

        # A manifest pointing at a file that is not an ONNX model at all (picked up by polling).
        republish(artifact, "broken", b"not a model")
        time.sleep(0.5)
        assert version() == original
        refused = http.post("/v1/admin/reload", params={"force": True}, headers=admin)
        assert refused.status_code == 409 and "onnxruntime" in refused.json()["message"]

        # A good new version: found by the poller and swapped in under concurrent traffic.
        async def traffic() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url) as client:
                statuses = []
                for _ in range(20):
                    rs = await asyncio.gather(
                        *(client.get("/v1/users/h/prediction") for _ in range(5))
                    )
                    statuses += [r.status_code for r in rs]
                    await asyncio.sleep(0.02)
                return statuses

        republish(artifact, "v2", good_onnx)
        assert set(asyncio.run(traffic())) == {200}
        wait_until(lambda: version() == "v2")
        card = http.get("/v1/model").json()
        assert card["model_version"] == "v2"
        text = http.get("/metrics").text
    assert 'seqcast_model_info{provider="' in text and 'version="v2"} 1.0' in text
    assert f'version="{original}"}} 0.0' in text

def test_no_artifact_means_not_ready_and_503_until_one_arrives(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: LiveServerFactory, demo_artifact: Path, tmp_path: Path,
    wait_until: Callable[..., Any],
) -> None:
    artifact = tmp_path / "later"
    app = create_app(make_settings(artifact_dir=artifact, reload_poll_seconds=0.1), registry)
    with live_server(app) as server, httpx.Client(base_url=server.url) as http:
        r = http.get("/v1/users/x/prediction")
        assert r.status_code == 503 and r.json()["error"] == "model_not_ready"
        assert http.get("/readyz").json() == {"ready": False, "model": False, "redis": True}
        shutil.copytree(demo_artifact, artifact)
        wait_until(lambda: http.get("/readyz").status_code == 200)
        assert http.get("/v1/users/x/prediction").json()["cold_start"] is True
