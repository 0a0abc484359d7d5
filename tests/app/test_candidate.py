"""A candidate model beside the serving one, over real HTTP: shadow scoring off the request
path and A/B routing by user hash, each share honoured within sampling error, every answer
and every live figure labelled by the version that produced it (two really trained
artifacts, a real redis-server, uvicorn on a real port)."""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.inference.serving import user_bucket
from app.main import create_app
from app.settings import Settings
from model.artifact import MANIFEST, load_artifact

pytestmark = pytest.mark.slow

T0 = 1_714_564_800.0


@pytest.fixture(scope="module")
def candidate_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second model, trained on other synthetic shoppers with another seed."""
    from model.pipeline import build_demo_artifact

    return build_demo_artifact(
        tmp_path_factory.mktemp("candidate") / "demo", users=200, preset="tiny", seed=1
    )


@pytest.fixture(scope="module")
def arms(demo_artifact: Path, candidate_artifact: Path) -> tuple[str, str, list[str]]:
    """The two versions (primary, candidate) and items the primary knows."""
    primary = load_artifact(demo_artifact).manifest.model_version
    candidate = load_artifact(candidate_artifact).manifest.model_version
    assert primary != candidate
    return primary, candidate, load_artifact(demo_artifact).items.ids[:30]


def post_histories(http: httpx.Client, users: list[str], items: list[str]) -> None:
    events = [{"user_id": u, "item_id": items[(j + i) % len(items)], "behavior": "view",
               "timestamp": T0 + 60 * i, "event_id": f"{u}-{i}"}
              for j, u in enumerate(users) for i in range(2)]
    for start in range(0, len(events), 1000):
        r = http.post("/v1/events", json={"events": events[start : start + 1000]})
        assert r.status_code == 200, r.text


def next_events(http: httpx.Client, users: list[str], items: list[str]) -> None:
    body = {"events": [{"user_id": u, "item_id": items[0], "behavior": "cart",
                        "timestamp": T0 + 600, "event_id": f"{u}-next"} for u in users]}
    assert http.post("/v1/events", json=body).status_code == 200


def within(observed: int, n: int, share: float) -> bool:
    """Inside four binomial standard deviations of n * share."""
    return abs(observed - n * share) <= 4 * math.sqrt(n * share * (1 - share))


def live(http: httpx.Client) -> dict[str, Any]:
    body = http.get("/v1/model/live").json()
    return body | {"by_version": {v["version"]: v for v in body["versions"]}}


def settled(read: Callable[[], Any], wait_until: Callable[..., None]) -> Any:
    """`read()` once it returns the same value twice, 0.3 s apart (background work done)."""
    last: list[Any] = [object()]

    def same() -> bool:
        now = read()
        stable = now == last[0]
        last[0] = now
        if not stable:
            time.sleep(0.3)
        return stable

    wait_until(same)
    return last[0]


def test_shadow_scores_a_share_of_requests_after_the_answer(
    make_settings: Callable[..., Settings], live_server: Any, candidate_artifact: Path,
    arms: tuple[str, str, list[str]], wait_until: Callable[..., None],
) -> None:
    primary, candidate, items = arms
    settings = make_settings(candidate_artifact=candidate_artifact, candidate_mode="shadow",
                             candidate_share=0.5, live_sample_share=0.0)
    users = [f"s{i}" for i in range(200)]
    with live_server(create_app(settings, CollectorRegistry())) as server, \
            httpx.Client(base_url=server.url) as http:
        post_histories(http, users, items)
        answers = [http.get(f"/v1/users/{u}/prediction").json() for u in users]
        assert {a["model_version"] for a in answers} == {primary}  # the shadow never answers

        def recorded() -> tuple[float, float]:
            by = live(http)["by_version"]
            return (by.get(primary, {}).get("recorded", 0.0),
                    by.get(candidate, {}).get("recorded", 0.0))

        kept_primary, kept_candidate = settled(recorded, wait_until)
        assert kept_primary == kept_candidate  # both predictions of each shadowed request
        assert within(int(kept_candidate), len(users), 0.5), kept_candidate
        text = http.get("/metrics").text
        assert (f'seqcast_shadow_predictions_total{{version="{candidate}"}} '
                f'{kept_candidate}') in text
        info = rf'seqcast_candidate_info{{provider="[A-Za-z]+",version="{candidate}"}} 1.0'
        assert re.search(info, text)

        next_events(http, users, items)
        body = live(http)
        assert (body["serving_version"], body["candidate_version"]) == (primary, candidate)
        assert body["candidate_mode"] == "shadow"
        roles = {v["version"]: v["role"] for v in body["versions"]}
        assert roles == {primary: "primary", candidate: "candidate"}
        for version in (primary, candidate):
            nb = body["by_version"][version]["targets"]["next_behavior"]
            assert nb["scored"] == kept_candidate and nb["log_loss"] > 0
        # The two models differ, so do their figures on the same outcomes.
        assert (body["by_version"][primary]["targets"]["next_behavior"]["log_loss"]
                != body["by_version"][candidate]["targets"]["next_behavior"]["log_loss"])


def test_ab_routes_a_stable_share_of_users_by_hash(
    make_settings: Callable[..., Settings], live_server: Any, candidate_artifact: Path,
    arms: tuple[str, str, list[str]], wait_until: Callable[..., None],
) -> None:
    primary, candidate, items = arms
    settings = make_settings(candidate_artifact=candidate_artifact, candidate_mode="ab",
                             candidate_share=0.3, live_sample_share=1.0)
    users = [f"ab{i}" for i in range(400)]
    with live_server(create_app(settings, CollectorRegistry())) as server, \
            httpx.Client(base_url=server.url) as http:
        post_histories(http, users, items)
        first = {u: http.get(f"/v1/users/{u}/prediction").json()["model_version"]
                 for u in users}
        again = {u: http.get(f"/v1/users/{u}/prediction").json()["model_version"]
                 for u in users[:50]}
        assert all(again[u] == first[u] for u in again)  # a user stays in their arm
        assert all(first[u] == (candidate if user_bucket(u) < 0.3 else primary) for u in users)
        n_candidate = sum(v == candidate for v in first.values())
        assert within(n_candidate, len(users), 0.3), n_candidate
        ingest = http.post("/v1/events?predict=true", json={"events": [
            {"user_id": u, "item_id": items[1], "behavior": "view", "timestamp": T0 + 300,
             "event_id": f"{u}-p"} for u in users[:40]]}).json()
        assert all(p["model_version"] == first[p["user_id"]] for p in ingest["predictions"])

        def recorded() -> dict[str, float]:
            return {v: f["recorded"] for v, f in live(http)["by_version"].items()}

        kept = settled(recorded, wait_until)
        ab_users = sum(v == candidate for v in first.values())
        # Each user's first window, and for 40 of them the window after the ingest too.
        assert kept[candidate] == ab_users + sum(first[u] == candidate for u in users[:40])
        assert kept[primary] == len(users) - ab_users + sum(
            first[u] == primary for u in users[:40])


def test_promoting_the_candidate_is_a_reload(
    make_settings: Callable[..., Settings], demo_artifact: Path, candidate_artifact: Path,
    arms: tuple[str, str, list[str]], tmp_path: Path,
) -> None:
    """Publish the candidate's artifact in the primary's directory (manifest last) and
    reload: the primary then answers with the candidate's version."""
    primary, candidate, items = arms
    served = tmp_path / "current"
    shutil.copytree(demo_artifact, served)
    settings = make_settings(artifact_dir=served, candidate_artifact=candidate_artifact,
                             candidate_mode="shadow", candidate_share=0.0)
    with TestClient(create_app(settings, CollectorRegistry())) as client:
        client.post("/v1/events", json={"user_id": "p", "item_id": items[0],
                                         "behavior": "view", "timestamp": T0})
        assert client.get("/v1/users/p/prediction").json()["model_version"] == primary
        for f in sorted(candidate_artifact.iterdir(), key=lambda f: f.name == MANIFEST):
            if f.is_file():
                shutil.copy2(f, served / f.name)
        reload = client.post("/v1/admin/reload", headers={"X-API-Key": "dev-admin-key"})
        assert reload.json()["model_version"] == candidate, reload.text
        assert client.get("/v1/users/p/prediction").json()["model_version"] == candidate
        assert client.get("/v1/model/live").json()["serving_version"] == candidate
