"""A batch's timestamp column -> unix seconds and a validity mask, by model.timestamps' rule.

The rule is applied to whole columns: numeric strings through NUMBER_PATTERN and one cast
(`numbers`, tied to `model.timestamps.number_of` by a test), ISO 8601 strings once per
distinct string (`iso_seconds`), and the range as `in_range_mask`. Which kinds a column may
hold comes from its format (Format.ts_unit); the unit of its numbers is chosen once per file.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from model.timestamps import NUMBER_PATTERN, UNITS, in_range_mask, iso_seconds, unit_for


def clean_strings(values: pa.Array) -> pa.Array:
    """Any column as strings, nulls empty, surrounding whitespace trimmed."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return pc.utf8_trim_whitespace(values.fill_null(""))


def numbers(strings: pa.Array) -> np.ndarray:
    """The number each (trimmed) string spells, NaN where it spells none."""
    is_number = pc.match_substring_regex(strings, f"^(?:{NUMBER_PATTERN})$")
    out = np.full(len(strings), math.nan)
    mask = is_number.fill_null(False).to_numpy(zero_copy_only=False)
    if mask.any():
        out[mask] = pc.cast(strings.filter(is_number), pa.float64()).to_numpy()
    return out


def iso(strings: pa.Array) -> np.ndarray:
    """Unix seconds of each (trimmed) ISO 8601 string, NaN where it is not one."""
    enc = pc.dictionary_encode(strings)
    table = np.array(
        [math.nan if (s := iso_seconds(u)) is None else s for u in enc.dictionary.to_pylist()],
        dtype=np.float64,
    )
    return table[enc.indices.to_numpy(zero_copy_only=False)]


class TimeColumn:
    """Timestamps of one file, batch by batch; `unit` is what the file's times turned out to be
    ("s", "ms", "us", "ns", "iso8601" or "parquet timestamp[...]"; empty until known)."""

    def __init__(self, kinds: str) -> None:
        self.kinds = kinds  # Format.ts_unit: "s", "ms", "iso" or "auto"
        self.unit = ""

    def seconds(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Unix seconds (int64, floored) and a validity mask for one batch of raw timestamps."""
        if pa.types.is_timestamp(values.type):
            ticks = pc.cast(values, pa.int64()).fill_null(0).to_numpy().astype(np.float64)
            self.unit = self.unit or f"parquet timestamp[{values.type.unit}]"
            secs = ticks / UNITS[values.type.unit]
            secs[np.asarray(values.is_null())] = math.nan
            return _valid(secs)
        strings = None
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            nums = pc.cast(values, pa.float64()).fill_null(math.nan).to_numpy()
        else:
            strings = clean_strings(values)
            nums = numbers(strings) if self.kinds != "iso" else np.full(len(values), math.nan)
        is_number = ~np.isnan(nums)
        secs = nums / UNITS[self._numeric_unit(nums[is_number])]
        if strings is not None and self.kinds in ("iso", "auto") and not is_number.all():
            rest = ~is_number
            secs[rest] = iso(strings.filter(pa.array(rest)))
            if not self.unit and not np.isnan(secs[rest]).all():
                self.unit = "iso8601"
        return _valid(secs)

    def _numeric_unit(self, nums: np.ndarray) -> str:
        if self.kinds in ("s", "ms"):
            self.unit = self.unit or self.kinds
            return self.kinds
        if self.unit in UNITS:
            return self.unit
        if len(nums) == 0:
            return "s"
        self.unit = unit_for(nums)
        return self.unit


def _valid(secs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = in_range_mask(secs)
    return np.where(ok, np.floor(np.where(ok, secs, 0)), 0).astype(np.int64), ok
