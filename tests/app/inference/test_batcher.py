"""The micro-batcher over real HTTP (uvicorn on a free port): concurrent requests share model
calls and get their own answers; a lone request is scored inline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.slow

LiveServerFactory = Callable[..., Any]

def test_concurrent_requests_share_model_calls_and_get_their_own_answers(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    live_server: LiveServerFactory,
    events: Callable[..., Any], metric_value: Callable[..., Any],
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
        # the batch's items come from one search over all its windows: the same as alone
        assert [i["id"] for i in got["top_items"]] == [i["id"] for i in alone[user]["top_items"]]
        assert [i["score"] for i in got["top_items"]] == pytest.approx(
            [i["score"] for i in alone[user]["top_items"]], abs=1e-5
        )
    calls = metric_value(text, "seqcast_model_batch_size_count") - before
    assert calls < len(answers), "concurrent requests were not coalesced into batches"

def test_lone_requests_are_scored_inline_with_the_same_answers(
    make_settings: Callable[..., Settings], live_server: LiveServerFactory,
    events: Callable[..., Any],
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
