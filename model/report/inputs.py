"""Reading the report's inputs: numbers that may be missing or NaN, per-head epoch losses,
and the calibration as a plain dict (see the package docstring for their shapes)."""

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


def losses(record: Mapping[str, Any], key: str) -> dict[str, float]:
    """Per-head losses of an epoch record; a plain float counts as head "total"."""
    value = record.get(key)
    if isinstance(value, Mapping):
        numbers = {k: number(v) for k, v in value.items()}
        return {k: v for k, v in numbers.items() if v is not None}
    out: dict[str, float] = {}
    for candidate in (value, record.get(key.replace("_loss", "_total"))):
        value_or_none = number(candidate)
        if value_or_none is not None:
            out["total"] = value_or_none
    return out


def calibration_dict(calibration: Any) -> dict[str, Any]:
    if calibration is None:
        return {}
    if hasattr(calibration, "to_dict"):
        return dict(calibration.to_dict())
    return dict(calibration)
