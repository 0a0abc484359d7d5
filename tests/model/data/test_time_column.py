"""Timestamp columns: the unit of numeric times chosen per file, and the column form of the
rule agreeing with model.timestamps' scalar form on any input."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.data import LoadedLog
from model.data.time_column import TimeColumn, clean_strings, numbers
from model.timestamps import UNITS, number_of, parse_timestamp

T0 = 1_511_600_000  # inside Taobao's span


@pytest.mark.parametrize(
    ("scale", "unit"), [(1, "s"), (1000, "ms"), (1_000_000, "us"), (1_000_000_000, "ns")]
)
def test_csv_numeric_time_unit_from_magnitude(
    write: Callable[[str, str | bytes], Path],
    load: Callable[..., LoadedLog],
    scale: int,
    unit: str,
) -> None:
    path = write(
        "log.csv", f"user,item,behavior,t\n1,2,view,{T0 * scale}\n1,3,buy,{(T0 + 7) * scale}\n"
    )
    columns = {"user": "user", "item": "item", "behavior": "behavior", "timestamp": "t"}
    loaded = load(path, fmt="csv", columns=columns)
    assert loaded.report.timestamp_unit == unit
    assert loaded.log.ts.tolist() == [T0, T0 + 7]


# Text near the grammars: digits, signs, separators, exponents, zone letters, blanks.
_near = st.text(alphabet="0123456789+-.,:eETZUC t", max_size=30)
_numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False).map(repr),
    st.floats(0, 5e18).map(lambda x: f"{x:.6g}"),
)
_iso = st.builds(
    lambda dt, sep, zone, digits: dt.isoformat(sep=sep, timespec=digits) + zone,
    st.datetimes(),
    st.sampled_from(["T", " ", "t"]),
    st.sampled_from(["", "Z", "z", " UTC", "+05:30", "-0800", "+01", "+24:00"]),
    st.sampled_from(["hours", "minutes", "seconds", "milliseconds", "microseconds"]),
)


@settings(deadline=None)
@given(st.lists(st.one_of(_near, _numbers), max_size=20))
def test_numbers_of_a_column_are_number_of_each_string(texts: list[str]) -> None:
    trimmed = clean_strings(pa.array(texts, type=pa.string()))
    got = numbers(trimmed)
    for text, value in zip(trimmed.to_pylist(), got, strict=True):
        expected = number_of(text)
        assert (math.isnan(value) and expected is None) or value == expected, text


@settings(deadline=None)
@given(st.lists(st.one_of(_iso, _numbers, _near), min_size=1, max_size=20))
def test_a_timestamp_column_reads_as_parse_timestamp_reads_each_value(texts: list[str]) -> None:
    column = TimeColumn("auto")
    secs, ok = column.seconds(pa.array(texts, type=pa.string()))
    unit = column.unit if column.unit in UNITS else "s"
    for text, got, valid in zip(texts, secs, ok, strict=True):
        try:
            expected = parse_timestamp(text, unit)
        except ValueError:
            assert not valid, text
        else:
            assert valid and got == np.floor(expected), text
