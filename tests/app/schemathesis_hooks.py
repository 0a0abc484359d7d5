"""Schemathesis hooks of `test_schemathesis` (loaded by `st run` through SCHEMATHESIS_HOOKS).

The OpenAPI document states every rule of a request that JSON Schema can state. Four rules
are in descriptions only, as no JSON Schema can state them:

- a timestamp's calendar date must exist (no 2023-02-29);
- a timestamp's instant must lie inside the bounds after its zone offset (quoted numbers too);
- an ingested event may lie at most SEQCAST_MAX_CLOCK_SKEW_SECONDS ahead of the server
  clock, a bound that moves with the clock;
- the sequences of a POST /v1/predict body hold at most SEQCAST_MAX_BATCH_EVENTS events in
  all (each sequence's own limit is in the schema).

A generated positive case (one that should be accepted) that breaks one of them is made to
keep it before it is sent: such a timestamp (an event's, or the `at` of a prediction, in
its query or its body) is replaced by a valid one of the same JSON type,
and the events past the budget are dropped. Negative cases are sent as generated: the service
must refuse them whatever else they break. Every check then holds the service to its document.
"""

from __future__ import annotations

import re
import time
from typing import Any

import schemathesis

from app.schemas import TIMESTAMP_PATTERN
from model.timestamps import END, START, parse_timestamp

# The defaults of SEQCAST_MAX_CLOCK_SKEW_SECONDS and SEQCAST_MAX_BATCH_EVENTS, which the test
# serves with.
SKEW_SECONDS = 300.0
MAX_BATCH_EVENTS = 1000
VALID = {str: "2024-05-01T12:00:00Z", float: 1_714_564_800.0}
_PATTERN = re.compile(TIMESTAMP_PATTERN)


def _fits_schema(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return START <= value < END
    return isinstance(value, str) and _PATTERN.search(value) is not None


def _refused(value: Any, latest: float | None) -> bool:
    try:
        seconds = parse_timestamp(value)
    except ValueError:
        return True
    return latest is not None and seconds > latest


def _within_budget(body: Any) -> None:
    budget = MAX_BATCH_EVENTS
    for sequence in body.get("sequences", []):
        if isinstance(sequence, dict) and isinstance(sequence.get("events"), list):
            del sequence["events"][budget:]
            budget -= len(sequence["events"])


def _events(body: Any) -> list[Any]:
    """The event objects of a POST /v1/events or /v1/predict body."""
    if "sequences" in body:
        return [e for s in body["sequences"] if isinstance(s, dict)
                and isinstance(s.get("events"), list) for e in s["events"]]
    if isinstance(body.get("events"), list):
        return list(body["events"])
    return [body]


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if not positive:
        return
    query = case.query if isinstance(case.query, dict) else {}
    if _fits_schema(query.get("at")) and _refused(query["at"], None):  # the moment asked about
        query["at"] = VALID[str]
    if not isinstance(case.body, dict):
        return
    if _fits_schema(case.body.get("at")) and _refused(case.body["at"], None):
        case.body["at"] = VALID[str if isinstance(case.body["at"], str) else float]
    ingest = case.operation.path == "/v1/events"
    latest = time.time() + SKEW_SECONDS - 5 if ingest else None  # 5 s for the trip
    if case.operation.path == "/v1/predict":
        _within_budget(case.body)
    for event in _events(case.body):
        value = event.get("timestamp") if isinstance(event, dict) else None
        if _fits_schema(value) and _refused(value, latest):
            event["timestamp"] = VALID[str if isinstance(value, str) else float]
