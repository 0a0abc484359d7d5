"""The gradient-boosted head: LightGBM over the window's recency features at the request time
and the network's probabilities, exported to ONNX beside the network (`head.onnx`).

Why: on the window's own hand-built counts and times (`model.tabular`), trees read the next
behavior better than the Transformer does from the same events, and only they see how long
the shopper has been idle when the question is asked. The head answers next behavior,
purchase and return in the network's place; the service, the parity check and the evaluator
reach it through `model.runtime.OnnxModel`, which computes its input with the same function
the trainer fits it on.

Fitting: every prediction point before the test cutoff (as the LightGBM baseline, at most
MAX_POINTS, seeded), each asked about twice: just after its last event and at a random later
time before its next one (`model.sequences.later_points`), labels counted from that moment.
The network's probabilities of a point are its exported graph's (`OnnxModel`). Trees grow on
the points whose target lies in the training period; the validation period's points of one
seeded half of its users stop them early, those of the other half choose the calibrators
(`model.calibrate`) of the head's answers. Idle time may only lower the purchase probability
(a monotone constraint; idle time is the only input that depends on when the question is
asked): the longer a shopper has been away, the less likely a purchase within the horizon
from now, and trees fitted on a small log should not learn the opposite from noise. The
return probability has no such constraint: a return counts only from `return_gap` after
the request on, so just after an event (the shopper still in the session) it can rise with
idle time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
import torch

from model.artifact import HEAD, Artifact, HeadInfo, sha256_of
from model.baselines.gradient_boosting import EARLY_STOP, LIGHTGBM_PARAMS, N_ROUNDS
from model.calibrate import Calibration, calibrate
from model.errors import SeqcastError
from model.evaluation.network import code_columns
from model.evaluation.scoring import CHUNK  # windows per network call, as the evaluator's
from model.features import BEHAVIOR_NAMES, N_BEHAVIORS
from model.metrics import log_loss
from model.runtime import OnnxModel
from model.sequences import (
    CENSORED,
    EventLog,
    Points,
    TimeSplit,
    later_points,
    prediction_points,
)
from model.tabular import (
    CATEGORICAL,
    HEAD_INPUTS,
    NETWORK_COLUMNS,
    head_input,
    tabular_features,
)
from model.train.batches import window_features

if TYPE_CHECKING:
    import lightgbm as lgb

logger = logging.getLogger(__name__)

MAX_POINTS = 300_000
MONOTONE_DECREASING = ("idle_seconds",)  # for the purchase trees
PARITY_TOLERANCE = 1e-4  # ONNX Runtime's trees against LightGBM's own predictions
OPSET = 15  # the highest onnxmltools converts LightGBM to


class ExportError(SeqcastError):
    """The exported head does not answer what LightGBM answers."""


@dataclass(frozen=True)
class HeadPoints:
    """The head's fitting points: inputs, labels, and which rows grow, stop or calibrate."""

    x: np.ndarray  # (n, len(HEAD_INPUTS)) float32
    behavior: np.ndarray  # (n,) next behavior code
    purchase: np.ndarray  # (n,) int8, CENSORED where unknown
    returns: np.ndarray
    role: np.ndarray  # (n,) 0 grow, 1 stop early, 2 calibrate


def _inputs(model: OnnxModel, log: EventLog, points: Points, nows: list[np.ndarray]
            ) -> list[np.ndarray]:
    """The head's input of the points asked about at each of `nows`, chunk by chunk (one
    network call per chunk: the windows are the same)."""
    a = model.artifact
    item_of_code, _ = code_columns(log.item_ids, a.items)
    category_of_code, _ = code_columns(log.category_ids, a.categories)
    items, categories = item_of_code[log.item], category_of_code[log.category]
    out: list[list[np.ndarray]] = [[] for _ in nows]
    for lo in range(0, len(points), CHUNK):
        chunk = points.take(slice(lo, lo + CHUNK))
        features = window_features(items, categories, log.behavior, log.ts, chunk.start,
                                   chunk.length, a.manifest.features, int(chunk.length.max()))
        outputs = model.run_uncalibrated(features)  # the staged network, no head yet
        for kept, now in zip(out, nows, strict=True):
            tabular = tabular_features(features, now[lo : lo + CHUNK], a.manifest.features)
            kept.append(head_input(tabular, outputs))
    return [np.concatenate(k) for k in out]


def head_points(model: OnnxModel, log: EventLog, split: TimeSplit, seed: int) -> HeadPoints:
    """The points before the test cutoff (at most MAX_POINTS), just after their last event
    and at a random later moment, with the network `model` answering them."""
    m = model.artifact.manifest
    before = log.take(log.ts < split.test_cutoff)
    known_until = split.test_cutoff - 1
    points = prediction_points(
        before, m.features.window_len, m.horizon_seconds, m.return_gap_seconds,
        target_from=int(before.ts.min()), target_until=split.test_cutoff,
        known_until=known_until,
    ).sample(MAX_POINTS, seed)
    later = later_points(before, points, m.horizon_seconds, m.return_gap_seconds, known_until,
                         seed)
    just_after, idle = _inputs(model, before, points, [points.now, later.now])
    late = before.ts[points.target] >= split.val_cutoff
    users = np.unique(before.user[points.last[late]])
    calibrating = np.random.default_rng(seed).permutation(users)[: len(users) // 2]
    role = np.where(late, np.where(np.isin(before.user[points.last], calibrating), 2, 1), 0)
    return HeadPoints(
        x=np.concatenate([just_after, idle]),
        behavior=np.tile(before.behavior[points.target].astype(np.int64), 2),
        purchase=np.concatenate([points.purchase, later.purchase]),
        returns=np.concatenate([points.returns, later.returns]),
        role=np.tile(role, 2),
    )


def _boost(params: dict[str, Any], x: np.ndarray, y: np.ndarray, role: np.ndarray
           ) -> lgb.Booster | None:
    """Trees on the growing rows, stopped early on the stopping rows; None when either has
    fewer than two classes (nothing to learn, or nothing to stop on)."""
    import lightgbm as lgb

    grow, stop = role == 0, role == 1
    if len(np.unique(y[grow])) < 2 or len(np.unique(y[stop])) < 2:
        return None
    categorical = [HEAD_INPUTS.index(c) for c in CATEGORICAL]
    train = lgb.Dataset(x[grow], y[grow], feature_name=list(HEAD_INPUTS),
                        categorical_feature=categorical, free_raw_data=False)
    valid = lgb.Dataset(x[stop], y[stop], reference=train)
    return lgb.train(params, train, num_boost_round=N_ROUNDS, valid_sets=[valid],
                     callbacks=[lgb.early_stopping(EARLY_STOP, verbose=False)])


@dataclass(frozen=True)
class FittedHead:
    boosters: dict[str, lgb.Booster]  # output name -> booster, the heads the trees answer
    calibration: Calibration
    # per head fitted: (the trees', the network's) log loss on the calibrating rows
    log_loss: dict[str, tuple[float, float]]


def fit_head(data: HeadPoints, seed: int) -> FittedHead | None:
    """The boosters of the heads the trees answer better than the network (log loss on the
    calibrating rows, held out from growing and stopping; None when no head), and the
    calibrators of whichever answers each head, chosen on those rows."""
    params = {**LIGHTGBM_PARAMS, "seed": seed}
    decreasing = [-1 if name in MONOTONE_DECREASING else 0 for name in HEAD_INPUTS]
    binary = {**params, "objective": "binary"}
    net = {name: HEAD_INPUTS.index(name) for name in NETWORK_COLUMNS}
    behavior_columns = [net[f"net_log_{b}"] for b in BEHAVIOR_NAMES]
    calibrating = data.role == 2
    boosters: dict[str, lgb.Booster] = {}
    heads: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    losses: dict[str, tuple[float, float]] = {}
    for name, head, labels, objective, network in (
        ("behavior_probs", "behavior", data.behavior,
         {"objective": "multiclass", "num_class": N_BEHAVIORS}, behavior_columns),
        ("purchase_prob", "purchase", data.purchase,
         {**binary, "monotone_constraints": decreasing}, net["net_purchase_logit"]),
        ("return_prob", "return", data.returns, binary, net["net_return_logit"]),
    ):
        known = labels != CENSORED
        rows = known & calibrating
        y = labels[rows].astype(np.int64)
        z = data.x[rows][:, network].astype(np.float64)  # the network's log-probs / log-odds
        network_p = np.exp(z) if head == "behavior" else 1 / (1 + np.exp(-z))
        booster = _boost({**params, **objective}, data.x[known],
                         labels[known].astype(np.int64), data.role[known])
        if booster is not None and rows.any():
            trees_p = np.asarray(booster.predict(data.x[rows]))
            losses[name] = (log_loss(y, trees_p), log_loss(y, network_p))
            if losses[name][0] < losses[name][1]:
                boosters[name] = booster
                network_p = trees_p
        p = np.clip(network_p, 1e-7, 1 - 1e-7)
        heads[head] = (torch.from_numpy(np.log(p) if head == "behavior" else
                                        np.log(p) - np.log1p(-p)),
                       torch.from_numpy(y if head == "behavior" else y.astype(np.float32)))
    if not boosters:
        return None
    return FittedHead(boosters, calibrate(heads), losses)


def _onnx(boosters: dict[str, lgb.Booster]) -> Any:
    """One ONNX graph: input x, one probability output per booster, named after it."""
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    nodes, initializers, outputs = [], [], []
    opsets: dict[str, int] = {}
    for name, booster in boosters.items():
        converted = convert_lightgbm(
            booster, initial_types=[("x", FloatTensorType([None, len(HEAD_INPUTS)]))],
            zipmap=False, target_opset=OPSET,
        )
        for opset in converted.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        graph = converted.graph
        probabilities = graph.output[1].name
        for k, node in enumerate(graph.node):
            node.name = f"{name}/{k}"
            node.output[:] = [name if o == probabilities else f"{name}/{o}" for o in node.output]
            node.input[:] = [i if i == "x" else f"{name}/{i}" for i in node.input]
        for tensor in graph.initializer:
            tensor.name = f"{name}/{tensor.name}"
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        width = N_BEHAVIORS if name == "behavior_probs" else 2
        outputs.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                          [None, width]))
    graph = onnx.helper.make_graph(
        nodes, "seqcast_head",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                            [None, len(HEAD_INPUTS)])],
        outputs, initializers)
    model = onnx.helper.make_model(graph, opset_imports=[
        onnx.helper.make_opsetid(domain, version) for domain, version in opsets.items()])
    onnx.checker.check_model(model)
    return model


def attach_head(artifact: Artifact, log: EventLog, split: TimeSplit, seed: int
                ) -> tuple[Artifact, Calibration | None]:
    """Fit the head on the log, write head.onnx into the staged artifact and check it
    against LightGBM; the artifact with the head and its calibrators in its manifest, and
    their calibration (None, and the artifact unchanged, when no head could be fitted)."""
    import onnx

    data = head_points(OnnxModel(artifact), log, split, seed)
    fitted = fit_head(data, seed)
    if fitted is None:
        logger.info("no gradient-boosted head: its trees answer no head better than the "
                    "network on the held-out points")
        return artifact, None
    path = artifact.path / HEAD
    onnx.save(_onnx(fitted.boosters), path)
    info = HeadInfo(inputs=HEAD_INPUTS, outputs=tuple(fitted.boosters),
                    trees={n: b.current_iteration() for n, b in fitted.boosters.items()},
                    log_loss=fitted.log_loss, sha256=sha256_of(path))
    headed = replace(artifact, manifest=artifact.manifest.model_copy(update={"head": info}))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sample = data.x[: min(len(data.x), 2000)]
    got = dict(zip(info.outputs, session.run(list(info.outputs), {"x": sample}), strict=True))
    for name, booster in fitted.boosters.items():
        want = np.asarray(booster.predict(sample))
        error = float(np.abs((got[name] if want.ndim == 2 else got[name][:, 1]) - want).max())
        if error > PARITY_TOLERANCE:
            raise ExportError(f"{HEAD}: {name} differs from LightGBM's own answer by "
                              f"{error:.3g} (tolerance {PARITY_TOLERANCE:g})")
    logger.info("gradient-boosted head: %d points, answers %s (trees %s; log loss trees / "
                "network %s), calibrators %s", len(data.x), info.outputs, info.trees,
                fitted.log_loss, fitted.calibration.chosen)
    m = headed.manifest
    return replace(headed, manifest=m.model_copy(update={
        "calibrators": fitted.calibration.calibrators,
        "calibration": fitted.calibration.manifest_entry(),
    })), fitted.calibration

