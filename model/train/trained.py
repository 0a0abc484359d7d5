"""A trained model: the network with everything needed to export, score or continue it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from model.artifact import OUTPUT_NAMES, Priors
from model.calibrate import Calibration
from model.features import INPUT_NAMES, Features, FeatureSpec, Vocab
from model.net.network import SeqNet
from model.net.scorer import Scorer
from model.train.config import TrainConfig
from model.train.inference import Batch, map_batches
from model.train.validation import EVAL_BATCH

ITEM_LOGP_BATCH = 8


@dataclass
class TrainedModel:
    """A trained network with everything needed to export, score or continue training it."""

    net: SeqNet
    spec: FeatureSpec
    items: Vocab
    categories: Vocab
    cfg: TrainConfig
    history: list[dict[str, Any]]
    calibration: Calibration
    priors: Priors
    surprise_quantiles: list[float]
    anomaly_quantiles: dict[str, list[float]]
    stats: dict[str, Any] = field(default_factory=dict)

    def scorer(self) -> Scorer:
        """The exported graph (the network's own probabilities), on CPU in eval mode."""
        return Scorer(copy.deepcopy(self.net).cpu()).eval()

    def predict(self, features: Features, batch_size: int = EVAL_BATCH) -> dict[str, np.ndarray]:
        """The outputs of `model.runtime.OnnxModel.run`, computed by PyTorch on CPU and
        calibrated by the same `model.calibration.Calibrators`."""
        scorer = self.scorer()

        def score(x: Batch) -> tuple[Tensor, ...]:
            return tuple(scorer(*[x[k] for k in INPUT_NAMES]))

        inputs = {k: features[k] for k in INPUT_NAMES}
        outputs = map_batches(score, inputs, batch_size, torch.device("cpu"))
        raw = {name: out.numpy() for name, out in zip(OUTPUT_NAMES, outputs, strict=True)}
        return self.calibration.calibrators.apply(raw)

    def item_logp(self, features: Features, rows: np.ndarray) -> np.ndarray:
        """PyTorch's log-probabilities of the item mixture over the whole vocabulary at the
        last position (`SeqNet.last_scores`), gathered at rows (B, C): the reference of the
        served item candidates. A few windows at a time: each builds a catalog-wide row."""
        net = self.scorer().net

        def score(x: Batch) -> tuple[Tensor, ...]:
            inputs = [x[k] for k in INPUT_NAMES]
            _, item = net.last_scores(net.encode(*inputs), inputs[0], inputs[1])
            return (item.log_softmax(-1).gather(1, x["rows"]),)

        arrays = {**{k: features[k] for k in INPUT_NAMES}, "rows": rows.astype(np.int64)}
        (logp,) = map_batches(score, arrays, ITEM_LOGP_BATCH, torch.device("cpu"))
        return logp.numpy()

    def save_checkpoint(self, path: Path) -> None:
        """A checkpoint that describes itself: configs, vocabularies and weights."""
        torch.save(
            {
                "train_config": self.cfg.to_dict(),
                "net_config": self.net.cfg.model_dump(by_alias=True),
                "features": self.spec.model_dump(mode="json"),
                "items": self.items.ids,
                "categories": self.categories.ids,
                "calibrators": self.calibration.calibrators.model_dump(by_alias=True),
                "state_dict": {k: v.cpu() for k, v in self.net.state_dict().items()},
            },
            path,
        )
