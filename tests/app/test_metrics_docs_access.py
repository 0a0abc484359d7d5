"""Who may read /metrics and the API docs: open in development; in production the docs need
an API key by default; each is set apart by a setting (a metrics key, a metrics port of its
own, docs off)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.embedded_redis import free_port
from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.slow

DOCS = ("/openapi.json", "/docs", "/redoc")
STOREFRONT = {"X-API-Key": "storefront-key"}


def production(make_settings: Callable[..., Settings], **overrides: object) -> Settings:
    return make_settings(env="production", api_keys="storefront-key", admin_key="admin-key",
                         **overrides)


def test_development_serves_docs_and_metrics_without_a_key(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    with TestClient(create_app(make_settings(), registry)) as c:
        assert [c.get(path).status_code for path in (*DOCS, "/metrics")] == [200] * 4


def test_production_docs_need_an_api_key_by_default(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    with TestClient(create_app(production(make_settings), registry)) as c:
        for path in DOCS:
            refused = c.get(path)
            assert refused.status_code == 401
            assert refused.json()["error"] == "unauthorized"
            assert c.get(path, headers=STOREFRONT).status_code == 200
        assert "/v1/events" in c.get("/openapi.json", headers=STOREFRONT).json()["paths"]
        assert "/openapi.json" in c.get("/docs", headers=STOREFRONT).text


def test_docs_off_answers_404_even_with_a_key(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    with TestClient(create_app(production(make_settings, docs="off"), registry)) as c:
        assert [c.get(path, headers=STOREFRONT).status_code for path in DOCS] == [404] * 3


def test_a_metrics_key_guards_metrics(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    settings = production(make_settings, metrics_key="scrape-key")
    with TestClient(create_app(settings, registry)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=STOREFRONT).status_code == 401
        assert c.get("/metrics", headers={"X-API-Key": "scrape-key"}).status_code == 200
        scraped = c.get("/metrics", headers={"Authorization": "Bearer scrape-key"})
        assert scraped.status_code == 200
        assert "seqcast_model_ready 1.0" in scraped.text


def test_a_metrics_port_moves_metrics_off_the_api_port(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    port = free_port()
    settings = production(make_settings, metrics_port=port)
    with TestClient(create_app(settings, registry)) as c:
        assert c.get("/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert "seqcast_model_ready 1.0" in scraped.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")
