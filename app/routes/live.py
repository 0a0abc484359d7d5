"""GET /v1/model/live: the live figures of every model version next to its training report's."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from app.deps import ApiKey, MetricsDep, PredictorDep, ServingDep, StrictQuery
from app.monitor import TARGETS
from app.schemas import LiveOut, TargetLiveOut, VersionLiveOut

Role = Literal["primary", "candidate", "earlier"]
ROLE_ORDER: dict[Role, int] = {"primary": 0, "candidate": 1, "earlier": 2}

router = APIRouter(prefix="/v1/model", tags=["model"], dependencies=[ApiKey, StrictQuery])


@router.get("/live", summary="Live accuracy, calibration and drift beside the training report")
async def live(predictor: PredictorDep, serving: ServingDep, metrics: MetricsDep) -> LiveOut:
    """Each model version's predictions scored against the outcomes that arrived since the
    service started (every worker's): next-behavior log loss and accuracy, purchase and
    return log loss, AUC, ECE and reliability curve, the share of recorded predictions
    scored, and the input drift against its training data; each target beside the same
    figures of the training report. The serving model first, then the candidate."""
    primary = predictor.require()
    candidate = serving.candidate.current if serving.candidate is not None else None
    versions = []
    for version, f in metrics.live_figures().items():
        role: Role = ("primary" if version == primary.version else
                      "candidate" if candidate is not None and version == candidate.version
                      else "earlier")
        targets = {t: TargetLiveOut(**f["live"].get(t, {}), training=f["training"][t])
                   for t in TARGETS}
        versions.append(VersionLiveOut(version=version, role=role, recorded=f["recorded"],
                                       scored_share=f["scored_share"], targets=targets,
                                       drift=f["drift"]))
    versions.sort(key=lambda v: (ROLE_ORDER[v.role], v.version))
    return LiveOut(
        serving_version=primary.version,
        candidate_version=None if candidate is None else candidate.version,
        candidate_mode=None if serving.candidate is None else serving.mode,
        candidate_share=None if serving.candidate is None else serving.share,
        live_sample_share=serving.sample_share,
        versions=versions,
    )
