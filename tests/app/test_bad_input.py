"""Bad input gets a 422 (or 404/405) in the service's one error shape, naming the field and
what is allowed: huge numbers, user ids a path cannot carry, events from the future,
unreadable bodies, and the lenient spellings of `top_k`, `explain`, `predict` and `force`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.slow

T0 = 1_714_564_800


def one(user: str = "u", **fields: Any) -> dict[str, Any]:
    return {"user_id": user, "item_id": "sku-1", "behavior": "view", "timestamp": T0, **fields}


def fields_of(response: httpx.Response) -> list[str]:
    body = response.json()
    assert set(body) == {"error", "message", "fields"}, body
    assert body["error"] == "validation_error"
    return [f["field"] for f in body["fields"]]


def client_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_huge_numbers_are_a_422_on_a_connection_that_stays_open(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: Callable[..., Any],
) -> None:
    huge = "1" + "0" * 309
    event = '{"user_id":"u","item_id":"i","behavior":"view","timestamp":%s}'
    sequence = '{"sequences":[{"events":[{"item_id":"i","behavior":"view","timestamp":%s}]}]}'
    headers = {"content-type": "application/json"}
    with live_server(create_app(make_settings(), registry)) as server, httpx.Client(
        base_url=server.url, headers=headers
    ) as http:
        first = http.post("/v1/events", content=event % huge)
        assert first.status_code == 422 and fields_of(first) == ["timestamp"]
        r = http.post("/v1/predict", content=sequence % huge)
        assert r.status_code == 422 and fields_of(r) == ["sequences.0.events.0.timestamp"]
        # More digits than Python reads as an int: the body, not a field, is named.
        r = http.post("/v1/events", content=event % ("1" + "0" * 5000))
        assert r.status_code == 422 and fields_of(r) == ["body"]
        assert "close" not in r.headers.get("connection", "")
        last = http.post("/v1/events", content=event % T0)
        assert last.status_code == 200
        assert client_port(first) == client_port(last)  # one keep-alive connection


def test_one_user_id_rule_on_every_route(client: TestClient) -> None:
    for bad in ("a/b", "/", ".", "..", "a\x01b", ""):
        r = client.post("/v1/events", json=one(bad))
        assert r.status_code == 422 and fields_of(r) == ["user_id"], bad
        r = client.post("/v1/events", json={"events": [one("ok"), one(bad)]})
        assert r.status_code == 422 and fields_of(r) == ["events.1.user_id"], bad
        r = client.post("/v1/predict", json={"sequences": [{"user_id": bad, "events": []}]})
        assert r.status_code == 422 and fields_of(r) == ["sequences.0.user_id"], bad
    for path in ("/v1/users/%2E/prediction", "/v1/users/%2E%2E"):
        r = client.request("DELETE" if "prediction" not in path else "GET", path)
        assert r.status_code == 422 and fields_of(r) == ["user_id"]
    assert client.get("/v1/users/u/prediction").status_code == 200  # nothing was stored

    # Every other character is stored and reachable, percent-encoded, on every route.
    reserved = "shop:42?q=1#frag ü.."
    r = client.post("/v1/events", json=one(reserved))
    assert r.status_code == 200 and r.json()["users"][0]["user_id"] == reserved
    prediction = client.get(f"/v1/users/{quote(reserved, safe='')}/prediction")
    assert prediction.status_code == 200
    assert prediction.json()["user_id"] == reserved and prediction.json()["window_length"] == 1
    deleted = client.delete(f"/v1/users/{quote(reserved, safe='')}")
    assert deleted.json() == {"user_id": reserved, "deleted": True}

    spec = client.get("/openapi.json").json()
    ingest_id = spec["components"]["schemas"]["EventIn"]["properties"]["user_id"]
    (path_id,) = spec["paths"]["/v1/users/{user_id}"]["delete"]["parameters"]
    for schema in (ingest_id, path_id["schema"]):
        assert "'/'" in (schema.get("description") or path_id["description"])
        # The configured length (SEQCAST_MAX_ID_LENGTH, default 128), not the hard cap.
        assert schema["pattern"] == ingest_id["pattern"] and schema["maxLength"] == 128


def test_events_from_beyond_the_clock_skew_are_refused(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
) -> None:
    with TestClient(create_app(make_settings(max_clock_skew_seconds=60), registry)) as c:
        far = c.post("/v1/events", json=one("future", timestamp="2099-12-31T00:00:00Z"))
        assert far.status_code == 422 and fields_of(far) == ["events.0.timestamp"]
        assert "at most 60 s ahead of the server clock" in far.json()["message"]
        batch = [one("future", timestamp=T0), one("future", timestamp=time.time() + 3600)]
        r = c.post("/v1/events", json={"events": batch})
        assert r.status_code == 422 and fields_of(r) == ["events.1.timestamp"]
        assert c.get("/v1/users/future/prediction").json()["cold_start"] is True
        near = c.post("/v1/events", json=one("future", timestamp=time.time() + 30))
        assert near.status_code == 200 and near.json()["accepted"] == 1


def test_every_unreadable_request_answers_the_error_shape(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    for path in ("/v1/events", "/v1/predict"):
        undecodable = client.post(path, content=b"\xff\xfe{", headers=json_type)
        assert undecodable.status_code == 422 and fields_of(undecodable) == ["body"]
        assert "UTF-8" in undecodable.json()["message"]
        malformed = client.post(path, content=b'{"user_id": "u", ', headers=json_type)
        assert malformed.status_code == 422 and fields_of(malformed) == ["body"]
        assert "malformed JSON at character 17" in malformed.json()["message"]
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "Not Found"}
    wrong_method = client.put("/v1/events")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("top_k=true", "query.top_k"), ("top_k=1.0", "query.top_k"), ("top_k=+5", "query.top_k"),
        ("top_k=", "query.top_k"), ("top_k=1&top_k=2", "query.top_k"),
        ("explain=yes", "query.explain"), ("explain=1", "query.explain"),
        ("explain=True", "query.explain"), ("explain=true&explain=true", "query.explain"),
    ],
)
def test_prediction_query_is_read_strictly(client: TestClient, query: str, field: str) -> None:
    r = client.get(f"/v1/users/u/prediction?{query}")
    assert r.status_code == 422 and fields_of(r) == [field]


def test_flags_of_ingest_reload_and_stateless_predict_are_read_strictly(
    client: TestClient,
) -> None:
    for query in ("predict=1", "predict=yes", "predict=true&predict=false", "top_k=true"):
        r = client.post(f"/v1/events?{query}", json=one("strict"))
        assert r.status_code == 422 and fields_of(r)[0].startswith("query."), query
    assert client.get("/v1/users/strict/prediction").json()["cold_start"] is True
    admin = {"X-API-Key": "dev-admin-key"}
    r = client.post("/v1/admin/reload?force=1", headers=admin)
    assert r.status_code == 422 and fields_of(r) == ["query.force"]
    sequences = [{"events": [{"item_id": "i", "behavior": "view", "timestamp": T0}]}]
    for name, value in (("top_k", True), ("top_k", "3"), ("top_k", 3.5),
                        ("explain", "yes"), ("explain", 1), ("explain", "true")):
        r = client.post("/v1/predict", json={"sequences": sequences, name: value})
        assert r.status_code == 422 and fields_of(r) == [name], (name, value)
    ok = client.post("/v1/predict", json={"sequences": sequences, "top_k": 3, "explain": True})
    assert ok.status_code == 200 and len(ok.json()["predictions"][0]["top_items"]) <= 3
    # 3.0 is the integer 3 in JSON Schema, as the OpenAPI document's `integer` means it.
    whole = client.post("/v1/predict", json={"sequences": sequences, "top_k": 3.0})
    assert whole.status_code == 200 and len(whole.json()["predictions"][0]["top_items"]) <= 3
    leading_zeros = client.get("/v1/users/u/prediction?top_k=0003&explain=false")
    assert leading_zeros.status_code == 200
