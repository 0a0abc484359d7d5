"""The console at /ui: its files over plain HTTP, then the page in Debian's headless
chromium against a real service (real Redis, the demo model), read back from the DOM the
browser rendered and from a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is absent (Debian: apt-get install -y chromium; .ci/run installs it)",
)
KEY = "ui-test-storefront-key-0123456789"


def _chromium(url: str, profile: Path, *mode: str) -> str:
    """Chromium run headless on `url` until the page's fetches settle (virtual time)."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=8000",
         *mode, url],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout


class _Rendered(HTMLParser):
    """What the console drew: each bar's name and value, each window row's cells, the
    report plots, and whether the API key field is shown."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.bars: dict[str, float | None] = {}
        self.rows: list[list[str]] = []
        self.contributions: list[float] = []
        self.plots: list[str] = []
        self.live: set[tuple[str, str, str]] = set()  # (version, target, figure) rows
        self.hidden: set[str] = set()
        self.status = ""
        self._in: str | None = None
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "hidden" in a and a.get("id"):
            self.hidden.add(str(a["id"]))
        if a.get("data-name") is not None:
            value = a.get("data-value")
            self.bars[str(a["data-name"])] = None if value is None else float(value)
        if tag == "tr" and a.get("class") == "event":
            self.rows.append([])
        if tag == "td" and self.rows and self._in != "status":
            self.rows[-1].append("")
            self._in = "td"
            if "contribution" in (a.get("class") or ""):
                self.contributions.append(float(str(a["data-value"])))
        if tag == "tr" and a.get("data-figure"):
            self.live.add((str(a["data-version"]), str(a["data-target"]), str(a["data-figure"])))
        if tag == "img" and a.get("data-plot"):
            self.plots.append(str(a["data-plot"]))
            assert str(a["src"]).startswith("blob:http://127.0.0.1")
        if a.get("id") == "status":
            self._in = "status"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "p"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "td":
            self.rows[-1][-1] += data
        elif self._in == "status":
            self.status += data


def _assets(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_the_console_and_its_assets_are_served_locally_with_their_types(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: Callable[..., Any],
) -> None:
    with live_server(create_app(make_settings(), registry)) as server, httpx.Client(
        base_url=server.url
    ) as http:
        page = http.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        csp = page.headers["content-security-policy"]  # chromium enforces it in the test below
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assets = _assets(page.text)
        assert {"/ui/assets/console.js", "/ui/assets/console.css"} <= set(assets)
        for url in assets:
            assert url.startswith("/ui/"), f"{url}: the console loads nothing from elsewhere"
            answer = http.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].split(";")[0] in (
                "text/javascript", "text/css"), url
        script = http.get("/ui/assets/console.js").text
        assert not re.search(r"https?://", script), "the script calls no other host"
        missing = http.get("/ui/assets/other.js")
        assert missing.status_code == 404
        assert "console.css, console.js, index.html" in missing.json()["message"]
        plots = http.get("/ui/report").json()["plots"]
        assert plots and all(p.endswith(".png") for p in plots)
        png = http.get(f"/ui/report/{plots[0]}")
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
        assert http.get("/ui/report/..%2Fmanifest.json").status_code == 404
        unknown = http.get("/ui/report/metrics.json")  # in the report folder, not a plot
        assert unknown.status_code == 404
        assert f"the plots are {', '.join(plots)}" in unknown.json()["message"]


def test_the_report_plots_take_the_api_key_in_keyed_mode(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: Callable[..., Any],
) -> None:
    settings = make_settings(api_keys=(KEY,))
    with live_server(create_app(settings, registry)) as server, httpx.Client(
        base_url=server.url
    ) as http:
        assert http.get("/ui").status_code == 200  # the page asks for the key itself
        assert http.get("/ui/report").status_code == 401
        assert http.get("/ui/report", headers={"X-API-Key": KEY}).status_code == 200


@pytest.mark.slow
@needs_chromium
def test_the_console_draws_a_users_window_prediction_and_model_in_chromium(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: Callable[..., Any], events: Callable[[str, int], dict[str, Any]],
    tmp_path: Path, wait_until: Callable[..., None],
) -> None:
    with live_server(create_app(make_settings(live_sample_share=1.0), registry)) as server, \
            httpx.Client(base_url=server.url) as http:
        # one prediction kept and scored by the next event: live figures to draw
        assert http.post("/v1/events", json=events("shopper-0", 3)).status_code == 200
        http.get("/v1/users/shopper-0/prediction")
        wait_until(lambda: http.get("/v1/model/live").json()["versions"][0]["recorded"] == 1)
        assert http.post("/v1/events", json=events("shopper-0", 4)).status_code == 200
        live = http.get("/v1/model/live").json()["versions"][0]
        figures = {(live["version"], target, name)
                   for target, values in live["targets"].items()
                   for name, value in values.items()
                   if isinstance(value, float | int) and name != "scored"}
        assert (live["version"], "next_behavior", "accuracy") in figures
        assert http.post("/v1/events", json=events("shopper-1", 6)).status_code == 200
        served = http.get("/v1/users/shopper-1/prediction",
                          params={"top_k": 5, "explain": "true"}).json()
        plots = http.get("/ui/report").json()["plots"]
        url = f"{server.url}/ui?user=shopper-1"
        drawn = _Rendered(_chromium(url, tmp_path / "profile", "--dump-dom"))
        shot = tmp_path / "ui.png"
        _chromium(url, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1600")

    assert drawn.status == "user shopper-1"
    assert not {"prediction", "tops", "window", "model"} & drawn.hidden
    for behavior, p in served["next_behavior"].items():
        assert drawn.bars[f"next-{behavior}"] == pytest.approx(p, abs=1e-9)
    assert drawn.bars["purchase"] == pytest.approx(served["purchase_probability"], abs=1e-9)
    assert drawn.bars["return"] == pytest.approx(served["return_probability"], abs=1e-9)
    for top in served["top_items"]:
        assert drawn.bars[f"item-{top['id']}"] == pytest.approx(top["score"], abs=1e-9)
    for top in served["top_categories"]:
        assert drawn.bars[f"category-{top['id']}"] == pytest.approx(top["score"], abs=1e-9)
    posted = events("shopper-1", 6)["events"]
    assert [(r[0], r[2], r[3], r[4]) for r in drawn.rows] == [
        (str(i), e["behavior"], e["item_id"], e["category_id"]) for i, e in enumerate(posted)
    ]
    assert drawn.rows[2][1] == "2024-05-01 12:01:00"  # T0 + 60 s, in UTC
    by_position = {c["position"]: c["contribution"] for c in served["explanation"]}
    assert drawn.contributions == pytest.approx([by_position[i] for i in range(6)], abs=1e-9)
    assert drawn.plots == plots
    assert drawn.live == figures  # every live figure of the version, as the route gives it
    assert shot.stat().st_size > 20_000
    assert shot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
@needs_chromium
def test_the_console_asks_for_the_api_key_in_keyed_mode(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: Callable[..., Any], tmp_path: Path,
) -> None:
    settings = make_settings(api_keys=(KEY,))
    with live_server(create_app(settings, registry)) as server:
        drawn = _Rendered(_chromium(f"{server.url}/ui?user=shopper-1", tmp_path / "profile",
                                    "--dump-dom"))
    assert "key-label" not in drawn.hidden
    assert drawn.status.startswith("this service needs an API key (X-API-Key)")
    assert {"prediction", "window", "model"} <= drawn.hidden


@pytest.mark.slow
@needs_chromium
def test_the_console_shows_a_cold_start_and_the_apis_refusal_of_a_bad_user_id(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: Callable[..., Any], tmp_path: Path,
) -> None:
    with live_server(create_app(make_settings(), registry)) as server:
        new = _Rendered(_chromium(f"{server.url}/ui?user=nobody-yet", tmp_path / "profile",
                                  "--dump-dom"))
        bad = _Rendered(_chromium(f"{server.url}/ui?user=a%01b", tmp_path / "profile",
                                  "--dump-dom"))  # a control character in the id
    assert new.status == "user nobody-yet"
    assert new.rows == [] and new.contributions == []
    assert all(new.bars[n] is not None for n in ("next-view", "purchase", "return"))
    tops = [n for n in new.bars if n.startswith("item-")]
    assert tops and all(new.bars[n] is None for n in tops)  # priors: ids without a score
    assert bad.status.startswith("HTTP 422: user_id: ")
    assert {"prediction", "window", "model"} <= bad.hidden
