"""Reading the report's inputs: numbers that may be missing or NaN, an epoch's losses (per
head, and the weighted total), and the calibration as a plain dict (see the package
docstring for their shapes)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def epochs(history: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if isinstance(history, Mapping):
        return list(history.get("epochs", []))
    return list(history)


def head_losses(record: Mapping[str, Any], split: str) -> dict[str, float]:
    """Per-head losses of an epoch record, split "train" or "val"."""
    value = record.get(f"{split}_loss")
    if not isinstance(value, Mapping):
        return {}
    numbers = {k: number(v) for k, v in value.items()}
    return {k: v for k, v in numbers.items() if v is not None}


def total_loss(record: Mapping[str, Any], split: str) -> float | None:
    """The epoch's `{split}_total`: the weighted sum of the heads' losses that training
    minimized and early stopping compared (a plain float `{split}_loss` is that total)."""
    for candidate in (record.get(f"{split}_total"), record.get(f"{split}_loss")):
        value = number(candidate)
        if value is not None:
            return value
    return None


def calibration_dict(calibration: Any) -> dict[str, Any]:
    if calibration is None:
        return {}
    if hasattr(calibration, "to_dict"):
        return dict(calibration.to_dict())
    return dict(calibration)
