"""The HTTP API under TestClient, with the real trained demo model and a real Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from eventlogs import event_log
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from app.main import create_app
from app.settings import Settings
from app.store.keys import seen_key, window_key
from model.artifact import load_artifact
from model.evaluation.network import onnx_scorer
from model.evaluation.protocol import Ranked
from model.features import FIRST_KNOWN, Behavior, Event
from model.retrieval import ItemIndex, item_candidates
from model.runtime import OnnxModel
from model.sequences import TimeSplit
from model.sequences import test_points as points_of

pytestmark = pytest.mark.slow

T0 = 1_714_564_800.0


def event(user: str, i: int, *, ts: float | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "item_id": f"item-{i}",
        "category_id": f"cat-{i % 3}",
        "behavior": ["view", "fav", "cart", "buy"][i % 4],
        "timestamp": T0 + 60 * i if ts is None else ts,
        "event_id": f"{user}-{i}",
        **fields,
    }


def known_events(artifact: Path, user: str, n: int) -> list[dict[str, Any]]:
    """Events on ids the model knows (so top-K and embeddings are exercised for real)."""
    a = load_artifact(artifact)
    items, cats = a.items.ids, a.categories.ids
    return [
        event(user, i, item_id=items[(7 * i) % len(items)], category_id=cats[i % len(cats)])
        for i in range(n)
    ]


def offline(artifact: Path, window: list[Event], at: float | None = None
            ) -> dict[str, np.ndarray]:
    """The exported model's answer for the window, asked about `at` (default: its last
    event's time)."""
    return OnnxModel(load_artifact(artifact)).score(
        [window], None if at is None else np.array([int(at)]))


def offline_items(artifact: Path, window: list[Event], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The item candidates of `window` (rows, probabilities, best first) by exact search."""
    loaded = load_artifact(artifact)
    model = OnnxModel(loaded)
    features = model.featurize([window])
    out = model.run(features)
    found = item_candidates(ItemIndex.open(loaded), out["item_query"], out["item_gate"],
                            out["item_copy"], features["item"], k, exact=True)
    valid = found.rows[0] >= 0
    return found.rows[0][valid], found.prob[0][valid]


def as_events(posted: list[dict[str, Any]]) -> list[Event]:
    ordered = sorted(posted, key=lambda e: e["timestamp"])
    return [
        Event(e["item_id"], e.get("category_id"), int(Behavior.parse(e["behavior"])),
              float(e["timestamp"]))
        for e in ordered
    ]


def redis_keys(url: str, prefix: str) -> list[str]:
    with redis.Redis.from_url(url, decode_responses=True) as r:
        return sorted(r.scan_iter(f"{prefix}:*"))


def test_prediction_equals_the_exported_model_offline(
    client: TestClient, demo_artifact: Path
) -> None:
    """Ingest (shuffled, with re-sent duplicates) -> prediction == OnnxModel on the same
    window, within the artifact's parity tolerance."""
    posted = known_events(demo_artifact, "u-parity", 12)
    shuffled = posted[5:] + posted[:5] + posted[2:4]
    r = client.post("/v1/events", json={"events": shuffled})
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["duplicates"]) == (12, 2)

    at = max(e["timestamp"] for e in posted)  # the moment offline() asks about
    got = client.get("/v1/users/u-parity/prediction", params={"top_k": 5, "at": at}).json()
    manifest = load_artifact(demo_artifact).manifest
    window = as_events(posted)[-manifest.features.window_len :]
    want = offline(demo_artifact, window)
    tol = manifest.parity_tolerance
    assert got["cold_start"] is False and got["window_length"] == len(window)
    assert got["model_version"] == manifest.model_version
    assert got["purchase_probability"] == pytest.approx(float(want["purchase_prob"][0]), abs=tol)
    assert got["return_probability"] == pytest.approx(float(want["return_prob"][0]), abs=tol)
    assert [got["next_behavior"][b] for b in manifest.behaviors] == pytest.approx(
        want["behavior_probs"][0].tolist(), abs=tol
    )
    items = load_artifact(demo_artifact).items
    rows, probs = offline_items(demo_artifact, window, 5)
    known = (rows >= FIRST_KNOWN) & (rows < items.first_oov)
    assert [s["id"] for s in got["top_items"]] == [items.id_of(r) for r in rows[known][:5]]
    assert [s["score"] for s in got["top_items"]] == pytest.approx(probs[known][:5], abs=tol)
    scores = [s["score"] for s in got["top_items"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-9
    assert 0 <= got["anomaly"]["percentile"] <= 1


def test_a_new_item_the_shopper_keeps_viewing_is_ranked_by_its_bucket(
    client: TestClient, demo_artifact: Path
) -> None:
    """An item first seen after training cannot be in the vocabulary, but the copy heads put
    probability on its hashed bucket: it is a candidate, scored by that bucket's share."""
    posted = known_events(demo_artifact, "u-new-item", 6)
    posted += [event("u-new-item", 6 + k, item_id="brand-new-item") for k in range(3)]
    assert client.post("/v1/events", json={"events": posted}).status_code == 200
    got = client.get("/v1/users/u-new-item/prediction", params={"top_k": 100}).json()
    artifact = load_artifact(demo_artifact)
    items = artifact.items
    rows, probs = offline_items(demo_artifact, as_events(posted), 100)
    bucket = items.index_of("brand-new-item")
    assert bucket in rows, "the window's own bucket is always a candidate"
    known = (rows >= FIRST_KNOWN) & (rows < items.first_oov)
    p_new = float(probs[rows == bucket][0])
    scores = {s["id"]: s["score"] for s in got["top_items"]}
    tol = 10 * artifact.manifest.parity_tolerance
    rank = int((probs[known] > p_new).sum())
    assert rank < 100, "viewed three times in a row: among the top 100"
    assert got["top_items"][rank]["id"] == "brand-new-item"
    assert scores["brand-new-item"] == pytest.approx(p_new, abs=tol)
    first = got["top_items"][0]
    assert first["score"] == pytest.approx(max(probs[known].max(), p_new), abs=tol)


def test_explanation_is_the_drop_in_purchase_probability_without_each_event(
    client: TestClient, demo_artifact: Path
) -> None:
    posted = known_events(demo_artifact, "u-explain", 4)
    client.post("/v1/events", json={"events": posted})
    at = max(e["timestamp"] for e in posted) + 60
    got = client.get("/v1/users/u-explain/prediction",
                     params={"explain": True, "at": at}).json()
    window = as_events(posted)
    tol = load_artifact(demo_artifact).manifest.parity_tolerance
    contributions = {c["position"]: c["contribution"] for c in got["explanation"]}
    assert sorted(contributions) == [0, 1, 2, 3]
    full = float(offline(demo_artifact, window, at)["purchase_prob"][0])
    without_3 = float(offline(demo_artifact, window[:3], at)["purchase_prob"][0])
    assert contributions[3] == pytest.approx(full - without_3, abs=2 * tol)
    without_2 = float(offline(demo_artifact, window[:2] + window[3:], at)["purchase_prob"][0])
    assert contributions[2] == pytest.approx(full - without_2, abs=2 * tol)
    magnitudes = [abs(c["contribution"]) for c in got["explanation"]]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_unknown_user_gets_the_model_prior_flagged_cold_start(
    client: TestClient, demo_artifact: Path
) -> None:
    priors = load_artifact(demo_artifact).manifest.priors
    got = client.get("/v1/users/never-seen/prediction", params={"top_k": 2}).json()
    assert got["cold_start"] is True and got["window_length"] == 0
    assert got["purchase_probability"] == pytest.approx(priors.purchase)
    assert list(got["next_behavior"].values()) == pytest.approx(priors.behavior)
    assert [s["id"] for s in got["top_items"]] == priors.top_items[:2]


def test_stateless_predict_scores_like_a_stored_window(
    client: TestClient, demo_artifact: Path
) -> None:
    posted = known_events(demo_artifact, "u-stateless", 6)
    client.post("/v1/events", json={"events": posted})
    at = max(e["timestamp"] for e in posted) + 5
    stored = client.get("/v1/users/u-stateless/prediction", params={"at": at}).json()
    sequence = [{k: e[k] for k in ("item_id", "category_id", "behavior", "timestamp")}
                for e in reversed(posted)]
    r = client.post("/v1/predict", json={"sequences": [
        {"user_id": "what-if", "events": sequence}, {"events": []},
    ], "at": at})
    assert r.status_code == 200, r.text
    what_if, empty = r.json()["predictions"]
    assert what_if["user_id"] == "what-if"
    assert what_if["purchase_probability"] == pytest.approx(stored["purchase_probability"])
    assert what_if["top_items"] == stored["top_items"]
    assert empty["cold_start"] is True


def test_predict_on_ingest_answers_fresh_predictions_per_user(client: TestClient) -> None:
    r = client.post("/v1/events", params={"predict": True},
                    json={"events": [event("a", 1), event("b", 2), event("a", 3)]})
    body = r.json()
    assert r.status_code == 200
    assert {u["user_id"]: u["window_length"] for u in body["users"]} == {"a": 2, "b": 1}
    assert {p["user_id"]: p["window_length"] for p in body["predictions"]} == {"a": 2, "b": 1}


def test_single_event_body_with_iso_time_and_server_time(client: TestClient) -> None:
    r = client.post("/v1/events", json={
        "user_id": "iso", "item_id": "x", "behavior": "fav", "timestamp": "2024-05-01T12:00:00Z"
    })
    assert r.status_code == 200 and r.json()["accepted"] == 1
    r = client.post("/v1/events", json={"user_id": "iso", "item_id": "y", "behavior": "view"})
    assert r.json()["users"][0]["window_length"] == 2


def test_invalid_batch_names_the_field_and_writes_nothing(
    client: TestClient, redis_url: str, key_prefix: str
) -> None:
    batch = [event("v", 1), event("v", 2, behavior="jump"), event("w", 3)]
    r = client.post("/v1/events", json={"events": batch})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error"
    field = body["fields"][0]
    assert field["field"] == "events.1.behavior"
    assert all(b in field["message"] for b in ("view", "fav", "cart", "buy"))
    assert redis_keys(redis_url, key_prefix) == []

    bad_time = client.post("/v1/events", json={"events": [event("v", 1, ts="yesterday")]})
    assert bad_time.json()["fields"][0]["field"] == "events.0.timestamp"
    extra = client.post("/v1/events", json={"user_id": "v", "item_id": "i", "behavior": "view",
                                            "price": 3})
    assert extra.json()["fields"][0]["field"] == "price"
    assert client.get("/v1/users/v/prediction", params={"top_k": 0}).json()["fields"][0][
        "field"] == "query.top_k"
    assert redis_keys(redis_url, key_prefix) == []


def test_configured_limits_refuse_and_write_nothing(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, redis_url: str,
    key_prefix: str,
) -> None:
    settings = make_settings(max_id_length=8, max_batch_events=3, max_body_bytes=600)
    with TestClient(create_app(settings, registry)) as c:
        long_id = c.post("/v1/events", json={"events": [event("ok", 1), event("u" * 9, 2)]})
        assert long_id.status_code == 422
        assert long_id.json()["fields"][0]["field"] == "events.1.user_id"
        too_many = c.post("/v1/events", json={"events": [event("u", i) for i in range(4)]})
        assert too_many.status_code == 422 and too_many.json()["fields"][0]["field"] == "events"
        too_big = c.post("/v1/events", json={"events": [event("u", 1, item_id="x" * 700)]})
        assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
        assert c.get("/v1/users/" + "u" * 9 + "/prediction").status_code == 422
        assert redis_keys(redis_url, key_prefix) == []
        assert c.post("/v1/events", json={"events": [event("u", 1)]}).status_code == 200


def test_api_keys_guard_the_api_and_the_admin_key_guards_admin(
    make_settings: Callable[..., Settings], registry: CollectorRegistry
) -> None:
    settings = make_settings(api_keys="shop-1,shop-2", admin_key="root-key")
    with TestClient(create_app(settings, registry)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/metrics").status_code == 200
        missing = c.get("/v1/users/u/prediction")
        assert missing.status_code == 401 and "shop-1" not in missing.text
        assert c.get("/v1/users/u/prediction", headers={"X-API-Key": "nope"}).status_code == 401
        for key in ("shop-1", "shop-2"):
            assert c.get("/v1/model", headers={"X-API-Key": key}).status_code == 200
        assert c.post("/v1/admin/reload", headers={"X-API-Key": "shop-1"}).status_code == 403
        r = c.post("/v1/admin/reload", headers={"X-API-Key": "root-key"})
        assert r.status_code == 200 and r.json()["reloaded"] is False


def test_production_refuses_unsafe_settings() -> None:
    with pytest.raises(ValidationError, match="API_KEYS"):
        Settings(env="production", admin_key="s3cret-admin")
    with pytest.raises(ValidationError, match="ADMIN_KEY"):
        Settings(env="production", api_keys="k1")
    ok = Settings(env="production", api_keys="k1, k2", admin_key="s3cret-admin",
                  redis_url="rediss://:pw@redis:6380/0")
    assert [k.get_secret_value() for k in ok.api_keys] == ["k1", "k2"]
    assert "pw" not in repr(ok) and "s3cret" not in repr(ok)


def test_delete_erases_the_user_and_ttl_follows_settings(
    make_settings: Callable[..., Settings], registry: CollectorRegistry, redis_url: str,
    key_prefix: str,
) -> None:
    with TestClient(create_app(make_settings(window_ttl_seconds=120), registry)) as c:
        c.post("/v1/events", json={"events": [event("gone", 1), event("gone", 2)]})
        with redis.Redis.from_url(redis_url) as r:
            assert 110 < r.ttl(window_key(key_prefix, "gone")) <= 120
            assert 110 < r.ttl(seen_key(key_prefix, "gone")) <= 120
        assert c.delete("/v1/users/gone").json() == {"user_id": "gone", "deleted": True}
        assert redis_keys(redis_url, key_prefix) == []
        assert c.get("/v1/users/gone/prediction").json()["cold_start"] is True
        assert c.delete("/v1/users/gone").json()["deleted"] is False


def test_model_card_reports_version_metrics_and_provider(
    client: TestClient, demo_artifact: Path
) -> None:
    manifest = load_artifact(demo_artifact).manifest
    card = client.get("/v1/model").json()
    assert card["model_version"] == manifest.model_version
    assert card["horizon_seconds"] == manifest.horizon_seconds
    assert card["metrics"] == manifest.metrics
    assert card["providers"][-1] == "CPUExecutionProvider" or "CUDA" in card["providers"][0]


def test_metrics_are_exposed_with_route_templates(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [event("m", 1), event("m", 1), event("m", 2)]})
    client.get("/v1/users/m/prediction")
    client.post("/v1/events", json={"events": [event("m", 1, behavior="jump")]})
    text = client.get("/metrics").text
    assert ('seqcast_http_request_duration_seconds_count{method="GET",'
            'route="/v1/users/{user_id}/prediction",status="200"} 1.0') in text
    assert "seqcast_events_ingested_total 2.0" in text
    assert "seqcast_events_duplicate_total 1.0" in text
    assert 'seqcast_events_rejected_total{reason="validation"} 1.0' in text
    assert "seqcast_model_ready 1.0" in text and "seqcast_redis_up 1.0" in text
    assert 'seqcast_model_info{provider="' in text
    for name in ("seqcast_model_inference_duration_seconds_count",
                 "seqcast_model_batch_size_count", "seqcast_window_length_count",
                 'seqcast_redis_duration_seconds_count{op="append"}',
                 "seqcast_purchase_probability_count"):
        assert name in text
    assert client.get("/readyz").json() == {"ready": True, "model": True, "redis": True}


def test_served_top_items_are_the_evaluators_ranking_of_the_same_window(
    client: TestClient, demo_artifact: Path
) -> None:
    """GET prediction over HTTP and the evaluator (`VocabScorer` on the exported artifact)
    rank the same window's items through the same merge, so they list the same items in the
    same order, a new item the shopper keeps viewing included."""
    posted = known_events(demo_artifact, "u-same", 9)
    posted += [event("u-same", 9 + i, item_id="brand-new-item") for i in range(3)]
    assert client.post("/v1/events", json={"events": posted}).status_code == 200
    got = client.get("/v1/users/u-same/prediction", params={"top_k": 20}).json()

    artifact = load_artifact(demo_artifact)
    window = as_events(posted)
    # The log knows every id of the vocabulary (as a training log does), and the new one.
    ids = [*artifact.items.ids, "brand-new-item"]
    known_cats = set(artifact.categories.ids)
    cats = [*artifact.categories.ids,
            *sorted({e.category_id for e in window if e.category_id not in known_cats})]
    rows = [(0, ids.index(e.item_id), cats.index(e.category_id), e.behavior, int(e.ts))
            for e in window]
    rows.append((0, 0, 0, 0, int(window[-1].ts) + 60))  # the next event: the test point
    log = event_log(rows, ["u-same"], ids, cats)
    split = TimeSplit(val_cutoff=rows[-1][4] - 1, test_cutoff=rows[-1][4], end=rows[-1][4])
    points = points_of(log, split, artifact.manifest.features.window_len, 3600, 1800)
    assert len(points) == 1 and int(points.length[0]) == len(window)
    ranked = onnx_scorer(artifact).score(log, points).item
    assert isinstance(ranked, Ranked) and ranked.top is not None
    evaluated = [str(log.item_ids[c]) for c in ranked.top[0] if c >= 0]
    assert "brand-new-item" in evaluated
    assert [s["id"] for s in got["top_items"]] == evaluated[: len(got["top_items"])]
