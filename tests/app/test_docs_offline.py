"""/docs and /redoc work without internet: every asset their HTML names is served by the
service itself, over real HTTP, and is what the page needs (JavaScript, a stylesheet)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.slow

_REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")
_CONTENT = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def _assets(page: str, base: str) -> set[str]:
    """Every script, stylesheet, icon and schema URL the page's HTML names, absolute."""
    return {urljoin(base, ref) for ref in _REFERENCE.findall(page)}


@pytest.mark.parametrize(("page", "bundle"), [("/docs", "swagger-ui-bundle.js"),
                                              ("/redoc", "redoc.standalone.js")])
def test_docs_pages_load_every_asset_from_the_service(
    page: str, bundle: str, live_server: Callable[..., Any],
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    with live_server(create_app(make_settings(), registry)) as server, httpx.Client() as http:
        html = http.get(server.url + page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        urls = _assets(html.text, server.url + page)
        assert any(url.endswith(bundle) for url in urls), urls
        assert all(urlsplit(url).netloc == urlsplit(server.url).netloc for url in urls), urls
        for url in urls:
            answer = http.get(url)
            assert answer.status_code == 200, url
            suffix = next((s for s in _CONTENT if urlsplit(url).path.endswith(s)), None)
            if suffix is not None:
                assert _CONTENT[suffix] in answer.headers["content-type"], url
                assert len(answer.content) > 1000, url
        assert "/v1/events" in http.get(server.url + "/openapi.json").json()["paths"]
