"""The service as operations sees it, over real HTTP (uvicorn on a free port): micro-batching
under concurrency, Redis outage and recovery, hot reload (broken artifacts refused), the
embedded redis-server and its supervisor, and `serve()` with two worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.embedded_redis import EmbeddedRedis, free_port
from app.main import create_app
from app.settings import Settings
from model.artifact import MANIFEST, ONNX, load_artifact, sha256_of

pytestmark = pytest.mark.slow

T0 = 1_714_564_800.0
LiveServerFactory = Callable[..., Any]


def events(user: str, n: int) -> dict[str, Any]:
    return {"events": [
        {"user_id": user, "item_id": f"i{i % 5}", "category_id": f"c{i % 2}",
         "behavior": ["view", "cart", "fav", "buy"][i % 4], "timestamp": T0 + 30 * i,
         "event_id": f"{user}-{i}"}
        for i in range(n)
    ]}


def metric_value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not exported")


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_concurrent_requests_share_model_calls_and_get_their_own_answers(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: LiveServerFactory,
) -> None:
    app = create_app(make_settings(batch_wait_ms=5), registry)
    with live_server(app) as server, httpx.Client(base_url=server.url) as http:
        users = [f"c{k}" for k in range(24)]
        for k, user in enumerate(users):
            assert http.post("/v1/events", json=events(user, 1 + k % 7)).status_code == 200
        alone = {u: http.get(f"/v1/users/{u}/prediction").json() for u in users}
        before = metric_value(http.get("/metrics").text, "seqcast_model_batch_size_count")

        async def together() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url) as client:
                return await asyncio.gather(
                    *(client.get(f"/v1/users/{u}/prediction") for u in users * 2)
                )

        answers = asyncio.run(together())
        text = http.get("/metrics").text
    assert all(r.status_code == 200 for r in answers)
    for r, user in zip(answers, users * 2, strict=True):
        got = r.json()
        assert got["window_length"] == alone[user]["window_length"]
        assert got["purchase_probability"] == pytest.approx(
            alone[user]["purchase_probability"], abs=1e-5
        )
    calls = metric_value(text, "seqcast_model_batch_size_count") - before
    assert calls < len(answers), "concurrent requests were not coalesced into batches"


def test_lone_requests_are_scored_inline_with_the_same_answers(
    make_settings: Callable[..., Settings], live_server: LiveServerFactory,
) -> None:
    """A lone prediction is scored on the loop's thread (the worker thread is never started);
    with inline_rows=0, and for a request of more rows (explain), it goes to the worker
    thread; the answers are the same either way."""
    answers: dict[int, dict[str, Any]] = {}
    for inline_rows in (4, 0):
        app = create_app(make_settings(inline_rows=inline_rows), CollectorRegistry())
        with live_server(app) as server, httpx.Client(base_url=server.url) as http:
            assert http.post("/v1/events", json=events("lone", 6)).status_code == 200
            answers[inline_rows] = http.get("/v1/users/lone/prediction").json()
            predictor = app.state.services.predictor
            assert predictor.current.on_cpu
            worker = predictor._batcher._executor
            assert bool(worker._threads) == (inline_rows == 0)
            explained = http.get("/v1/users/lone/prediction?explain=true")
            assert explained.status_code == 200
            assert worker._threads, "a 7-row request went to the worker thread"
    inline, hop = answers[4], answers[0]
    assert inline["top_items"] == hop["top_items"]
    assert inline["purchase_probability"] == hop["purchase_probability"]
    assert inline["next_behavior"] == hop["next_behavior"]


def test_redis_outage_answers_503_then_recovers_by_itself(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: LiveServerFactory, tmp_path: Path,
) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis", appendonly=False)
    redis_server.start()
    app = create_app(
        make_settings(redis_url=redis_server.url, redis_timeout_seconds=0.3), registry
    )
    try:
        with live_server(app) as server, httpx.Client(base_url=server.url) as http:
            assert http.post("/v1/events", json=events("o", 3)).status_code == 200
            redis_server.kill()
            down = http.get("/v1/users/o/prediction")
            assert down.status_code == 503
            assert down.headers["Retry-After"] == "1"
            assert down.json()["error"] == "store_unavailable"
            assert http.post("/v1/events", json=events("o", 4)).status_code == 503
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["redis"] is False
            assert http.get("/healthz").status_code == 200
            assert "seqcast_redis_up 0.0" in http.get("/metrics").text

            redis_server.start()
            wait_until(lambda: http.get("/readyz").status_code == 200)
            # A Redis without persistence came back empty: the user starts over.
            back = http.get("/v1/users/o/prediction")
            assert back.status_code == 200 and back.json()["cold_start"] is True
            assert http.post("/v1/events", json=events("o", 4)).json()["accepted"] == 4
            assert "seqcast_redis_up 1.0" in http.get("/metrics").text
    finally:
        redis_server.stop()


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


def test_embedded_redis_is_started_supervised_and_persistent(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    data = tmp_path / "data"
    settings = make_settings(redis_url=None, data_dir=data)
    with TestClient(create_app(settings, registry)) as c:
        assert c.post("/v1/events", json=events("e", 4)).status_code == 200
        embedded = c.app.state.services.embedded_redis  # type: ignore[attr-defined]
        pid = embedded.process.pid
        embedded.kill()
        wait_until(lambda: c.get("/readyz").status_code == 200 and embedded.process.pid != pid)
        assert c.get("/v1/users/e/prediction").json()["window_length"] == 4
    assert embedded.process is None
    assert any(data.rglob("*.aof")), "append-only persistence in the data directory"
    with TestClient(create_app(settings, CollectorRegistry())) as c:
        assert c.get("/v1/users/e/prediction").json()["window_length"] == 4


def test_serve_with_two_workers_shares_redis_and_aggregates_metrics(
    demo_artifact: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    env.update(SEQCAST_DATA_DIR=str(tmp_path / "var"), SEQCAST_RELOAD_POLL_SECONDS="0",
               SEQCAST_MODEL_THREADS="1")
    metrics_dir = tmp_path / "metrics"  # serve() keeps a directory it is given
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    code = (f"from app.serve import serve; from pathlib import Path; "
            f"serve(Path({str(demo_artifact)!r}), None, '127.0.0.1', {port}, 2)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            try:
                return httpx.get(url + "/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60)
        # /readyz answers for one worker, and a worker's gauges exist only once it has built
        # its app: livemin over one worker's file reads 1 while the other is still starting.
        def both_ready() -> bool:
            workers = len(list(metrics_dir.glob("gauge_livemin_*.db")))
            text = httpx.get(url + "/metrics").text
            return workers == 2 and metric_value(text, "seqcast_model_ready") == 1

        wait_until(both_ready, timeout=60)
        # New connections each time, so that the requests spread over both workers.
        with httpx.Client(base_url=url, headers={"Connection": "close"}) as http:
            for k in range(8):
                assert http.post("/v1/events", json=events(f"w{k}", 3)).status_code == 200
            for k in range(8):
                assert http.get(f"/v1/users/w{k}/prediction").json()["window_length"] == 3
            scrapes = [http.get("/metrics").text for _ in range(4)]
        for text in scrapes:
            assert metric_value(text, "seqcast_events_ingested_total") == 24
            assert metric_value(text, "seqcast_model_ready") == 1
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
