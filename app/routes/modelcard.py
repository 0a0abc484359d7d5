"""The model card and the admin reload."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.deps import BOOL_RULE, AdminKey, ApiKey, PredictorDep, StrictQuery
from app.schemas import ErrorOut, ModelCardOut, ReloadOut

router = APIRouter(prefix="/v1/model", tags=["model"], dependencies=[ApiKey])
admin = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminKey, StrictQuery])


@router.get("", summary="The model card")
async def model_card(predictor: PredictorDep) -> ModelCardOut:
    current = predictor.require()
    manifest = current.artifact.manifest
    return ModelCardOut(
        model_version=manifest.model_version,
        trained_at=manifest.trained_at,
        horizon_seconds=manifest.horizon_seconds,
        return_gap_seconds=manifest.return_gap_seconds,
        window_len=manifest.features.window_len,
        behaviors=list(manifest.behaviors),
        n_items=current.artifact.items.n_known,
        n_categories=current.artifact.categories.n_known,
        metrics=manifest.metrics,
        providers=current.model.providers,
        onnx_sha256=manifest.onnx_sha256,
        loaded_at=current.loaded_at.isoformat(),
    )


@admin.post(
    "/reload",
    summary="Load the artifact directory again and swap it in",
    responses={409: {"model": ErrorOut, "description": "artifact refused; old model serves"}},
    response_model_exclude_none=True,
)
async def reload(
    predictor: PredictorDep,
    force: bool = Query(
        False, description=f"reload even when the manifest did not change: {BOOL_RULE}"
    ),
) -> ReloadOut:
    """Checks the new artifact (checksum, output shapes and ranges on check windows,
    independence from batch padding) before swapping; requests in flight finish on the
    old model. A refused artifact answers 409 with the reason."""
    swapped, previous = await predictor.reload(force=force)
    current = predictor.require()
    return ReloadOut(
        reloaded=swapped,
        model_version=current.version,
        previous_version=previous,
        reason=None if swapped else "unchanged",
    )
