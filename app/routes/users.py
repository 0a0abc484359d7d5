"""A user's window: its prediction, and its erasure."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from app.deps import (
    AT_RULE,
    BOOL_RULE,
    TOP_K_RULE,
    ApiKey,
    Services,
    ServicesDep,
    StoreDep,
    StrictQuery,
    UserIdDep,
)
from app.schemas import (
    TOP_K_DEFAULT,
    TOP_K_MAX,
    TOP_K_MIN,
    DeletedOut,
    PredictionOut,
    Timestamp,
)


class JSONBytesResponse(JSONResponse):
    """A JSON body already serialized to bytes. A JSONResponse, so the OpenAPI documents the
    route's response model (a plain Response is documented as a string)."""

    def render(self, content: Any) -> bytes:
        return bytes(content)


router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[ApiKey, StrictQuery])

PREDICTION_PATH = "/v1/users/{user_id}/prediction"


async def prediction_json(services: Services, user_id: str, top_k: int, explain: bool,
                          at: float | None = None) -> bytes:
    """The answer of GET prediction for a checked user id, serialized (also `app.fastpath`).

    Serialized here, not through the response model: the predictor already builds the
    answer in PredictionOut's JSON shape, and validating it again costs more than the model.
    """
    services.predictor.require()
    (window,) = await services.store.read([user_id])
    (prediction,) = await services.serving.predict_users([user_id], [window], top_k=top_k,
                                                         explain=explain, at=at)
    return orjson.dumps({"user_id": user_id, **prediction})


@router.get(
    PREDICTION_PATH.removeprefix(router.prefix),
    summary="Predict a user's next behavior from their window",
    response_model=PredictionOut,
    response_model_exclude_none=True,
    response_class=JSONBytesResponse,
)
async def user_prediction(
    user_id: UserIdDep,
    services: ServicesDep,
    top_k: int = Query(TOP_K_DEFAULT, ge=TOP_K_MIN, le=TOP_K_MAX,
                       description=f"items and categories to return: {TOP_K_RULE}"),
    explain: bool = Query(
        False, description=f"attribute the purchase probability to events: {BOOL_RULE}"
    ),
    at: Annotated[Timestamp | None, Query(description=AT_RULE)] = None,
) -> Response:
    """Next-behavior probabilities, purchase and return probabilities within the model's
    horizon from the moment asked about (`at`, default now: a shopper idle for a day gets
    the answer for a shopper idle for a day), top-K items and categories, an anomaly score
    and (with `explain`) each past event's contribution. A user with no history gets the
    model's priors, `cold_start`."""
    return JSONBytesResponse(await prediction_json(services, user_id, top_k, explain, at))


@router.delete("/{user_id}", summary="Erase a user's window (privacy requests)")
async def delete_user(user_id: UserIdDep, store: StoreDep) -> DeletedOut:
    return DeletedOut(user_id=user_id, deleted=await store.delete(user_id))
