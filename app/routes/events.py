"""POST /v1/events: append events to user windows (optionally answer fresh predictions)."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime

from fastapi import APIRouter, Query

from app.deps import (
    BOOL_RULE,
    TOP_K_RULE,
    ApiKey,
    MetricsDep,
    PredictorDep,
    ServingDep,
    SettingsDep,
    StoreDep,
    StrictQuery,
    check_id,
)
from app.errors import InvalidRequest, StoreUnavailable
from app.schemas import (
    TOP_K_DEFAULT,
    TOP_K_MAX,
    TOP_K_MIN,
    EventIn,
    EventsBody,
    EventsIn,
    EventsOut,
    PredictionOut,
    UserIngestOut,
)
from app.store.window_store import StoredEvent, new_event_id
from model.features import Behavior, Event

router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=[ApiKey, StrictQuery])


def _validate_limits(events: list[EventIn], settings: SettingsDep, now: float) -> None:
    if len(events) > settings.max_batch_events:
        raise InvalidRequest(
            "events", f"at most {settings.max_batch_events} events per request, got {len(events)}"
        )
    latest = now + settings.max_clock_skew_seconds
    for i, e in enumerate(events):
        for name in ("user_id", "item_id", "category_id", "event_id"):
            check_id(settings, f"events.{i}.{name}", getattr(e, name))
        if e.timestamp is not None and e.timestamp > latest:
            # An event from the future would stay its window's newest for good.
            raise InvalidRequest(
                f"events.{i}.timestamp",
                f"at most {settings.max_clock_skew_seconds:g} s ahead of the server clock "
                f"({datetime.fromtimestamp(now, UTC).isoformat(timespec='seconds')})",
            )


def _window_length(predictor: PredictorDep, settings: SettingsDep) -> int:
    """The loaded model's window length; SEQCAST_WINDOW_LENGTH while none is loaded, so
    events are kept (not refused) before the first model and after a refused reload."""
    current = predictor.current
    if current is None:
        return settings.window_length
    return current.artifact.manifest.features.window_len


@router.post(
    "",
    summary="Ingest one event or a batch",
    response_model_exclude_none=True,
    responses={
        413: {"description": "body over SEQCAST_MAX_BODY_BYTES"},
        503: {"description": "window store unavailable, or no model for predict=true; retry "
              "after Retry-After seconds"},
    },
)
async def ingest(
    body: EventsBody,
    settings: SettingsDep,
    store: StoreDep,
    predictor: PredictorDep,
    metrics: MetricsDep,
    serving: ServingDep,
    predict: bool = Query(
        False, description=f"also return each user's fresh prediction: {BOOL_RULE}"
    ),
    top_k: int = Query(TOP_K_DEFAULT, ge=TOP_K_MIN, le=TOP_K_MAX, description=TOP_K_RULE),
) -> EventsOut:
    """Append events to their users' windows. Re-sent events (same `event_id`) are not
    counted twice, late events land in time order, each window keeps the model's window
    length (SEQCAST_WINDOW_LENGTH while no model is loaded: ingest needs none). Nothing is
    written when any event of the batch is invalid, or with `predict=true` and no model."""
    events = body.events if isinstance(body, EventsIn) else [body]
    now = time.time()
    try:
        _validate_limits(events, settings, now)
    except InvalidRequest:
        metrics.events_rejected.labels("limit").inc(len(events))
        raise
    if predict:
        predictor.require()
    window_len = _window_length(predictor, settings)
    by_user: dict[str, list[StoredEvent]] = defaultdict(list)
    for e in events:
        ts = now if e.timestamp is None else e.timestamp
        event = Event(e.item_id, e.category_id, int(Behavior.parse(e.behavior)), ts)
        by_user[e.user_id].append(StoredEvent(e.event_id or new_event_id(), event))
    try:
        results = await store.append(by_user, window_len)
    except StoreUnavailable:
        metrics.events_rejected.labels("store_unavailable").inc(len(events))
        raise
    added = sum(r.added for r in results.values())
    duplicates = sum(r.duplicates for r in results.values())
    metrics.events_ingested.inc(added)
    metrics.events_duplicate.inc(duplicates)
    serving.observe_ingest(by_user, results)
    out = EventsOut(
        accepted=added,
        duplicates=duplicates,
        users=[
            UserIngestOut(
                user_id=user, added=r.added, duplicates=r.duplicates, window_length=r.length
            )
            for user, r in results.items()
        ],
    )
    if predict:
        users = list(results)
        windows = await store.read(users)
        predictions = await serving.predict_users(users, windows, top_k=top_k)
        out.predictions = [
            PredictionOut(user_id=user, **prediction)
            for user, prediction in zip(users, predictions, strict=True)
        ]
    return out
