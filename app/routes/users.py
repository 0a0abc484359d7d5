"""A user's window: its prediction, and its erasure."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.deps import ApiKey, PredictorDep, StoreDep, UserIdDep
from app.schemas import DeletedOut, PredictionOut


class JSONBytesResponse(Response):
    """A JSON body already serialized to bytes."""

    media_type = "application/json"


router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[ApiKey])


@router.get(
    "/{user_id}/prediction",
    summary="Predict a user's next behavior from their window",
    response_model=PredictionOut,
    response_model_exclude_none=True,
    response_class=JSONBytesResponse,
)
async def user_prediction(
    user_id: UserIdDep,
    store: StoreDep,
    predictor: PredictorDep,
    top_k: int = Query(10, ge=1, le=100, description="items and categories to return"),
    explain: bool = Query(False, description="attribute the purchase probability to events"),
) -> Response:
    """Next-behavior probabilities, purchase and return probabilities within the model's
    horizon, top-K items and categories, an anomaly score and (with `explain`) each past
    event's contribution. A user with no history gets the model's priors, `cold_start`."""
    predictor.require()
    (window,) = await store.read([user_id])
    (prediction,) = await predictor.predict([window], top_k=top_k, explain=explain)
    # Serialized here, not through the response model: the predictor already built the
    # answer in PredictionOut's JSON shape, and validating it again costs more than the model.
    return JSONBytesResponse(orjson.dumps({"user_id": user_id, **prediction}))


@router.delete("/{user_id}", summary="Erase a user's window (privacy requests)")
async def delete_user(user_id: UserIdDep, store: StoreDep) -> DeletedOut:
    return DeletedOut(user_id=user_id, deleted=await store.delete(user_id))
