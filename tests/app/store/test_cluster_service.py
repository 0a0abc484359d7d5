"""The service on a real three-node Redis Cluster, its URL naming one node: users on every
node ingested and read back, a batch spanning slots, erasure, and a node killed and
restarted while events stream in (503 for that node's users only, no acknowledged event
lost)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from localcluster import LocalCluster
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from app.store.keys import seen_key, window_key

pytestmark = pytest.mark.slow

T0 = 1_714_564_800.0


def _event(user: str, n: int) -> dict[str, Any]:
    return {"user_id": user, "item_id": f"i{n % 5}", "behavior": "view",
            "timestamp": T0 + 30 * n, "event_id": f"{user}-{n}"}


def _service(make_settings: Callable[..., Settings], cluster: LocalCluster, node: int,
             registry: CollectorRegistry) -> TestClient:
    settings = make_settings(redis_url=cluster.nodes[node].url)
    return TestClient(create_app(settings, registry))


def test_users_on_every_node_are_ingested_in_one_batch_read_and_erased(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    redis_cluster: LocalCluster, key_prefix: str,
) -> None:
    users = [f"shopper-{i}" for i in range(45)]
    assert {redis_cluster.node_of(window_key(key_prefix, u)) for u in users} == {0, 1, 2}
    with _service(make_settings, redis_cluster, 1, registry) as client:
        batch = {"events": [_event(u, n) for u in users for n in range(3)]}
        ingested = client.post("/v1/events", json=batch)
        assert ingested.status_code == 200, ingested.text
        assert ingested.json()["accepted"] == 3 * len(users)
        assert client.post("/v1/events", json=batch).json()["duplicates"] == 3 * len(users)
        for user in users:
            prediction = client.get(f"/v1/users/{user}/prediction")
            assert prediction.status_code == 200
            assert prediction.json()["window_length"] == 3
        with_predictions = client.post("/v1/events?predict=true", json={"events": [
            _event(u, 3) for u in users[:9]
        ]})
        assert [p["window_length"] for p in with_predictions.json()["predictions"]] == [4] * 9
        for user in users[:3]:
            assert client.delete(f"/v1/users/{user}").json()["deleted"] is True
            assert client.get(f"/v1/users/{user}/prediction").json()["cold_start"] is True
        assert client.get("/readyz").status_code == 200


@dataclass
class Answer:
    user: str
    n: int
    status: int
    at: float
    retry_after: str | None
    message: str


class Ingest(threading.Thread):
    """POSTs one event per user, round after round, recording every answer, until stopped."""

    def __init__(self, client: TestClient, users: list[str]) -> None:
        super().__init__(daemon=True, name="ingest")
        self.client, self.users = client, users
        self.answers: list[Answer] = []
        self.halt = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            n = 0
            while not self.halt.is_set():
                for user in self.users:
                    response = self.client.post("/v1/events", json=_event(user, n))
                    assert response.status_code in (200, 503), response.text
                    body = response.json()
                    if response.status_code == 503:
                        assert body["error"] == "store_unavailable"
                    self.answers.append(Answer(
                        user, n, response.status_code, time.monotonic(),
                        response.headers.get("Retry-After"), body.get("message", ""),
                    ))
                n += 1
        except BaseException as exc:
            self.failure = exc

    def wait_for(self, check: Callable[[Answer], bool], timeout: float = 30.0) -> float:
        """When the first answer after now that passes `check` came."""
        since = time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            if self.failure is not None:
                raise self.failure
            hits = [a.at for a in self.answers[-len(self.users) * 4:] if a.at > since and check(a)]
            if hits:
                return hits[0]
            time.sleep(0.02)
        raise AssertionError("no such answer in time")


def test_a_node_restart_during_ingest_fails_only_its_users_and_loses_no_acknowledged_event(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    redis_cluster: LocalCluster, key_prefix: str,
) -> None:
    victim = 1  # the node the service's URL names: the others are found through it
    users = [f"buyer-{i}" for i in range(12)]
    on_victim = {u for u in users if redis_cluster.node_of(window_key(key_prefix, u)) == victim}
    assert on_victim and on_victim != set(users)
    with _service(make_settings, redis_cluster, victim, registry) as client:
        ingest = Ingest(client, users)
        ingest.start()
        try:
            ingest.wait_for(lambda a: a.user in on_victim and a.status == 200)
            redis_cluster.nodes[victim].kill()
            killed = time.monotonic()
            ingest.wait_for(lambda a: a.user in on_victim and a.status == 503)
            ingest.wait_for(lambda a: a.user not in on_victim and a.status == 200)
            assert client.get("/readyz").status_code == 200  # the cluster still answers
            redis_cluster.nodes[victim].start()
            restarted = time.monotonic()
            ingest.wait_for(lambda a: a.user in on_victim and a.status == 200)
            redis_cluster.wait_ok()
            ingest.wait_for(lambda a: a.user == users[-1] and a.status == 200)
        finally:
            ingest.halt.set()
            ingest.join(30)
            if not redis_cluster.nodes[victim].process:
                redis_cluster.nodes[victim].start()
        if ingest.failure is not None:
            raise ingest.failure
    refused = [a for a in ingest.answers if a.status == 503]
    assert refused
    assert [a for a in refused if a.user not in on_victim] == []
    assert all(a.retry_after == "1" and killed <= a.at for a in refused)
    assert any(a.status == 200 and killed < a.at < restarted and a.user not in on_victim
               for a in ingest.answers)
    acknowledged = [a for a in ingest.answers if a.status == 200]
    with redis.RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port,
                            decode_responses=True) as check:
        for answer in acknowledged:
            assert check.zscore(seen_key(key_prefix, answer.user), f"{answer.user}-{answer.n}")
