"""Error bodies tell a client the reason and nothing of the deployment (hosts, ports,
filesystem paths: the log has those); the keys' answers say which key is wrong; an
unexpected exception is still a JSON answer."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.embedded_redis import free_port
from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.slow

EVENT = {"user_id": "u", "item_id": "i", "behavior": "view"}
ADMIN = {"X-API-Key": "dev-admin-key"}


def test_store_outage_503_names_no_host_or_port(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_seconds=0.2)
    with TestClient(create_app(settings, registry)) as c, caplog.at_level(logging.WARNING):
        # the fast path (no query) and the route (a key the API ignores) alike
        for r in (c.post("/v1/events", json=EVENT), c.get("/v1/users/u/prediction"),
                  c.get("/v1/users/u/prediction?ref=a")):
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"] == "store_unavailable"
            assert "127.0.0.1" not in r.text and str(port) not in r.text
    assert f"127.0.0.1:{port}" in caplog.text  # the log has what the client does not
    # logged once where it arose (the store's rate-limited error), not once per request
    store_lines = [r for r in caplog.records if r.name == "app.store.redis_store"]
    assert len(store_lines) == 1, [r.getMessage() for r in store_lines]
    assert not [r for r in caplog.records if r.name == "app.responses"]


def test_refused_reload_409_and_no_model_503_name_no_path(
    make_settings: Callable[..., Settings], demo_artifact: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = tmp_path / "deploy-secret" / "served"
    shutil.copytree(demo_artifact, served)
    with TestClient(create_app(make_settings(artifact_dir=served), CollectorRegistry())) as c:
        (served / "model.onnx").write_bytes(b"not a model")
        with caplog.at_level(logging.WARNING):
            refused = c.post("/v1/admin/reload?force=true", headers=ADMIN)
        assert refused.status_code == 409 and refused.json()["error"] == "artifact_rejected"
        assert "checksum" in refused.json()["message"] and "model.onnx" in refused.text
        assert "deploy-secret" not in refused.text and str(tmp_path) not in refused.text
    assert str(served) in caplog.text

    empty = tmp_path / "deploy-secret" / "empty"
    empty.mkdir()
    with TestClient(create_app(make_settings(artifact_dir=empty), CollectorRegistry())) as c:
        for r in (c.get("/v1/users/u/prediction"), c.get("/v1/model"),
                  c.post("/v1/admin/reload", headers=ADMIN)):
            assert r.status_code in (409, 503) and "deploy-secret" not in r.text, r.text


def test_the_storefront_key_on_an_admin_route_is_forbidden(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    settings = make_settings(api_keys="shop-1", admin_key="root-key")
    with TestClient(create_app(settings, registry)) as c:
        storefront = c.post("/v1/admin/reload", headers={"X-API-Key": "shop-1"})
        assert storefront.status_code == 403 and storefront.json()["error"] == "forbidden"
        assert "www-authenticate" not in storefront.headers
        for headers in ({}, {"X-API-Key": "nope"}):
            r = c.post("/v1/admin/reload", headers=headers)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"] == "ApiKey"
        assert c.post("/v1/admin/reload", headers={"X-API-Key": "root-key"}).status_code == 200


def test_an_unexpected_exception_is_a_json_500_that_closes_the_connection(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    app = create_app(make_settings(), registry)

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail /var/secret")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/v1/boom")
    assert r.status_code == 500 and r.headers["connection"] == "close"
    assert r.json() == {"error": "internal_error",
                        "message": "internal error; the service log has it"}
