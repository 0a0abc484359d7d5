"""POST /v1/predict: stateless scoring of sequences given in the body."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import ApiKey, PredictorDep, SettingsDep, check_id
from app.errors import InvalidRequest
from app.schemas import PredictIn, PredictionOut, PredictionsOut
from model.features import Behavior, Event

router = APIRouter(prefix="/v1/predict", tags=["predict"], dependencies=[ApiKey])


@router.post("", summary="Score sequences without storing them", response_model_exclude_none=True)
async def predict(
    body: PredictIn, settings: SettingsDep, predictor: PredictorDep
) -> PredictionsOut:
    """Each sequence is scored as a user's window would be (sorted by time, the model's
    window length kept): backfills and what-if questions. Same answer shape as
    `GET /v1/users/{user_id}/prediction`."""
    total = sum(len(s.events) for s in body.sequences)
    if total > settings.max_batch_events:
        raise InvalidRequest(
            "sequences", f"at most {settings.max_batch_events} events in all, got {total}"
        )
    windows = []
    for i, sequence in enumerate(body.sequences):
        check_id(settings, f"sequences.{i}.user_id", sequence.user_id)
        for j, e in enumerate(sequence.events):
            check_id(settings, f"sequences.{i}.events.{j}.item_id", e.item_id)
            check_id(settings, f"sequences.{i}.events.{j}.category_id", e.category_id)
        ordered = sorted(sequence.events, key=lambda e: e.timestamp)
        windows.append(
            [Event(e.item_id, e.category_id, int(Behavior.parse(e.behavior)), e.timestamp)
             for e in ordered]
        )
    predictions = await predictor.predict(windows, top_k=body.top_k, explain=body.explain,
                                          at=body.at)
    return PredictionsOut(predictions=[
        PredictionOut(user_id=sequence.user_id, **prediction)
        for sequence, prediction in zip(body.sequences, predictions, strict=True)
    ])
