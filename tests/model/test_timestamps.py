"""The one timestamp rule of the service and the loader, against hand-computed unix times."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.timestamps import END, in_range, in_range_mask, parse_timestamp, unit_for

NOON = 1_714_564_800  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-05-01T12:00:00Z", NOON),
        ("2024-05-01t12:00:00z", NOON),
        ("2024-05-01 12:00:00", NOON),  # no zone: UTC
        ("  2024-05-01T12:00:00+00:00 ", NOON),
        ("2024-05-01T17:30:00+05:30", NOON),
        ("2024-05-01T17:30:00+0530", NOON),
        ("2024-05-01T07:00:00-05", NOON),
        ("2024-05-01T17:30:00 +05:30", NOON),
        ("2024-05-01 12:00:00 UTC", NOON),  # REES46
        ("2024-05-01 12:00:00UTC", NOON),
        ("2024-05-01T12", NOON),
        ("2024-05-01T12:00", NOON),
        ("2024-05-01T12:00:00.250Z", NOON + 0.25),
        ("2024-05-01T12:00:00,5", NOON + 0.5),
        ("2024-05-01T12:00:00.123456789Z", NOON + 0.123456789),
        ("20240501T120000Z", NOON),
        ("2024-05-01", NOON - 12 * 3600),
        ("2019-10-01 00:00:00 UTC", 1_569_888_000),
        ("1970-01-01T00:00:00Z", 0),
        ("2099-12-31T23:59:59Z", END - 1),
        ("2000-02-29", 951_782_400),
        ("1714564800", NOON),  # a number, in the unit (seconds)
        ("1714564800.5", NOON + 0.5),
        ("1.7145648e9", NOON),
        ("20240501", 20_240_501),  # digits alone are a number, not a basic-format date
    ],
)
def test_accepted_strings(text: str, seconds: float) -> None:
    assert parse_timestamp(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2024-02-30",
        "2023-02-29",
        "2024-05-01T24:00:00",
        "2024-05-01T12:60",
        "2024-05-01T12:00:60",
        "2024-5-1",
        "2024-05-01T9:00",
        "2024-W18-3",
        "2024-122",
        "2024-0501",
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:00+05:30:15",
        "2024-05-01T12:00:00Z UTC",
        "2024-05-01T",
        "nan",
        "inf",
    ],
)
def test_refused_strings(text: str) -> None:
    with pytest.raises(ValueError, match="unix seconds or an ISO 8601 string"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "value",
    [-1, -0.001, END, END + 1, math.nan, math.inf, -math.inf, 10**400, "2100-01-01", "1969-12-31"],
)
def test_outside_1970_to_2100_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="from 1970-01-01 up to"):
        parse_timestamp(value)


def test_numbers_units_and_other_types() -> None:
    assert parse_timestamp(NOON) == NOON and isinstance(parse_timestamp(NOON), float)
    assert parse_timestamp(NOON + 0.5) == NOON + 0.5
    assert parse_timestamp(0) == 0.0
    assert parse_timestamp(END - 0.001) == END - 0.001
    assert parse_timestamp(NOON * 1000, "ms") == NOON
    assert parse_timestamp(str(NOON * 10**6), "us") == NOON
    assert parse_timestamp(NOON * 10**9, "ns") == NOON
    assert parse_timestamp("2024-05-01T12:00:00Z", "ms") == NOON  # the unit is for numbers
    for value in (True, None, [NOON], b"1714564800"):
        with pytest.raises(ValueError, match="unix seconds"):
            parse_timestamp(value)


def test_datetimes_naive_is_utc() -> None:
    assert parse_timestamp(datetime(2024, 5, 1, 12)) == NOON
    plus_two = timezone(timedelta(hours=2))
    assert parse_timestamp(datetime(2024, 5, 1, 14, tzinfo=plus_two)) == NOON


def test_unit_from_magnitude() -> None:
    t = np.array([NOON, NOON + 60], dtype=np.float64)
    assert [unit_for(t * scale) for scale in (1, 1e3, 1e6, 1e9)] == ["s", "ms", "us", "ns"]
    assert unit_for(np.array([1e11 - 1])) == "s" and unit_for(np.array([1e11])) == "ms"


@settings(deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_the_range_mask_is_in_range_per_element(values: list[float]) -> None:
    seconds = np.array(values, dtype=np.float64)
    assert in_range_mask(seconds).tolist() == [in_range(v) for v in values]
