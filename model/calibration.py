"""Calibrators: the maps from the network's probabilities to the ones seqcast reports.

The exported graph answers the network's own probabilities; `Calibrators.apply` turns them
into the served ones. `model.runtime.OnnxModel.run` applies it, so the service, the
exporter's parity check and the evaluator all answer with the same numbers; the trainer
(`model.calibrate`) fits and chooses the calibrators and writes them into the manifest.
NumPy and pydantic only: the service imports this without PyTorch or scikit-learn.

Binary heads (purchase, return), on the logit z = log(p / (1 - p)):
    none            p
    temperature     sigmoid(z / T)
    platt           sigmoid(z / T + b)                        (temperature + bias)
    isotonic        piecewise-linear through the table (x, y) on p, flat outside it
Behavior softmax, on log p:
    none, temperature  softmax(log p / T),  temperature_bias  softmax(log p / T + b)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

# Probabilities are clipped this far from 0 and 1 before their logit is taken: float32
# rounds probabilities within 6e-8 of 1 to 1, whose logit is infinite.
EPS = 1e-7

BinaryKind = Literal["none", "temperature", "platt", "isotonic"]
SoftmaxKind = Literal["none", "temperature", "temperature_bias"]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


class BinaryCalibrator(BaseModel):
    """One binary head's map (see the module docstring); `x` strictly increasing."""

    model_config = ConfigDict(frozen=True)

    kind: BinaryKind = "none"
    temperature: float = Field(default=1.0, gt=0)
    bias: float = 0.0
    x: list[float] = Field(default_factory=list)  # isotonic: the table's probabilities ...
    y: list[float] = Field(default_factory=list)  # ... and the calibrated ones there

    @model_validator(mode="after")
    def _table(self) -> BinaryCalibrator:
        if self.kind == "isotonic" and (len(self.x) < 2 or len(self.x) != len(self.y)):
            raise ValueError("an isotonic calibrator needs a table of at least 2 (x, y) pairs")
        return self

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated P(y = 1), float64, for the network's p (any shape)."""
        if self.kind == "none":
            return np.asarray(p, dtype=np.float64)
        if self.kind == "isotonic":
            return np.interp(np.asarray(p, dtype=np.float64), self.x, self.y)
        bias = self.bias if self.kind == "platt" else 0.0
        return 1.0 / (1.0 + np.exp(-(_logit(p) / self.temperature + bias)))


class SoftmaxCalibrator(BaseModel):
    """The behavior softmax's map (see the module docstring); `bias` one per class."""

    model_config = ConfigDict(frozen=True)

    kind: SoftmaxKind = "none"
    temperature: float = Field(default=1.0, gt=0)
    bias: list[float] = Field(default_factory=list)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (..., K), float64, for the network's (..., K)."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.kind == "none":
            return probs
        z = np.log(np.clip(probs, 1e-30, 1.0)) / self.temperature
        if self.kind == "temperature_bias":
            z = z + np.asarray(self.bias, dtype=np.float64)
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


class Calibrators(BaseModel):
    """Every calibrated head's map; the default maps nothing (an uncalibrated model)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    behavior: SoftmaxCalibrator = SoftmaxCalibrator()
    purchase: BinaryCalibrator = BinaryCalibrator()
    return_: BinaryCalibrator = Field(default=BinaryCalibrator(), alias="return")

    def head(self, name: str) -> SoftmaxCalibrator | BinaryCalibrator:
        if name == "behavior":
            return self.behavior
        return {"purchase": self.purchase, "return": self.return_}[name]

    def apply(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs with the probability heads calibrated (float32, as the graph's);
        the other outputs untouched."""
        out = dict(outputs)
        for name, head in (("behavior_probs", self.behavior), ("purchase_prob", self.purchase),
                           ("return_prob", self.return_)):
            if name in out:
                out[name] = head.apply(out[name]).astype(np.float32)
        return out
