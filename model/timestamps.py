"""What an event time is, for the service and the loader alike: one rule, written once.

A timestamp is unix time, returned as float seconds:

    number    unix time in a unit: seconds for the service; the loader reads a file's numbers
              in the unit its format fixes, or picks one per file (`unit_for`). Units: s, ms,
              us, ns. Booleans are not numbers.
    string    surrounding whitespace is ignored (str.strip); then
              - a decimal number ("1511600000", "1.5e9") is that number (CSV fields are text,
                and a client may quote a number);
              - otherwise ISO 8601 with a calendar date: YYYY-MM-DD, or the date, "T" (or a
                space) and HH, HH:MM, HH:MM:SS or HH:MM:SS.fff (any number of fraction
                digits, "." or ","), then optionally a zone: "Z", +HH:MM, +HHMM, +HH (or -),
                or "UTC" (as REES46 writes "2019-10-01 00:00:00 UTC"), with optional spaces
                before it. A time without a zone is UTC. The basic format (20240501T120000Z)
                is read too, but a string of digits alone is a number, not a date. Letters
                are case-insensitive. Not accepted: week or ordinal dates, hour 24, leap
                seconds, unpadded fields (2024-5-1), offsets with seconds.
    datetime  (Python callers) an aware datetime as is; a naive one is UTC.

Valid range: 1970-01-01T00:00:00Z included to 2100-01-01T00:00:00Z excluded
([START, END) in unix seconds); anything outside, NaN or infinite is not an event time.

The service applies `parse_timestamp` to each value. The loader applies the same pieces to
whole columns: `number_of` through the same `NUMBER_PATTERN` (vectorised; a test ties the two),
`iso_seconds` once per distinct string, and `in_range_mask`, the array form of `in_range`;
it keeps whole seconds (the floor), and a named format may admit only one kind of value
(Taobao and RetailRocket numbers, REES46 strings).
This module is part of the contract the service imports: standard library and numpy only.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime

import numpy as np

START = 0.0  # 1970-01-01T00:00:00Z, included
END = 4_102_444_800.0  # 2100-01-01T00:00:00Z, excluded
UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}  # ticks per second
# Written for Python's re (fullmatch) and RE2 (pyarrow, anchored) alike: ASCII classes only.
NUMBER_PATTERN = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"

KIND_MESSAGE = "timestamp must be unix seconds or an ISO 8601 string like 2024-05-01T12:00:00Z"
RANGE_MESSAGE = "timestamp must lie from 1970-01-01 up to (not including) 2100-01-01 UTC"

_NUMBER = re.compile(NUMBER_PATTERN)
# The date's and the time's separators are each used throughout or not at all (\2, \6).
_ISO = re.compile(
    r"([0-9]{4})(-?)([0-9]{2})\2([0-9]{2})"
    r"(?:[T ]([01][0-9]|2[0-3])(?:(:?)([0-5][0-9])(?:\6([0-5][0-9])(?:[.,]([0-9]+))?)?)?)?"
    r" *(?:(Z|UTC)|([+-])([01][0-9]|2[0-3])(?::?([0-5][0-9]))?)?",
    re.IGNORECASE,
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def parse_timestamp(value: object, unit: str = "s") -> float:
    """One timestamp -> unix seconds, by the rule above; ValueError names what is wrong."""
    if isinstance(value, bool):
        raise ValueError(KIND_MESSAGE)
    if isinstance(value, float | int):
        seconds = _seconds(value, unit)
    elif isinstance(value, str):
        text = value.strip()
        parsed = iso_seconds(text)  # the two grammars share no string: the order is free
        if parsed is None and (number := number_of(text)) is not None:
            parsed = _seconds(number, unit)
        if parsed is None:
            raise ValueError(KIND_MESSAGE)
        seconds = parsed
    elif isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        seconds = aware.timestamp()
    else:
        raise ValueError(KIND_MESSAGE)
    if not in_range(seconds):
        raise ValueError(RANGE_MESSAGE)
    return seconds


def number_of(text: str) -> float | None:
    """The number a (stripped) string spells, or None."""
    return float(text) if _NUMBER.fullmatch(text) else None


def iso_seconds(text: str) -> float | None:
    """A (stripped) ISO 8601 string -> unix seconds, or None; the range is not checked."""
    m = _ISO.fullmatch(text)
    if m is None or text.isdigit():  # a basic-format date alone is a number
        return None
    year, _, month, day, hour, _, minute, second, fraction, _, sign, off_h, off_m = m.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # no such day (2023-02-29)
        return None
    whole = days * 86400
    if hour is not None:
        whole += int(hour) * 3600 + int(minute or 0) * 60 + int(second or 0)
    if sign is not None:
        offset = int(off_h) * 3600 + int(off_m or 0) * 60
        whole += -offset if sign == "+" else offset
    return whole + float("0." + fraction) if fraction else float(whole)


def in_range(seconds: float) -> bool:
    """Inside [START, END) (False for NaN)."""
    return START <= seconds < END


def in_range_mask(seconds: np.ndarray) -> np.ndarray:
    """`in_range` for each element of a float array."""
    return (seconds >= START) & (seconds < END)


def unit_for(numbers: np.ndarray) -> str:
    """The unit of a file's numeric times, from the median magnitude of some of them.

    Valid times in seconds stay below 1e11; in milliseconds, below 1e11 they would all lie
    before 1973-03-03, and so on up the units.
    """
    magnitude = float(np.median(np.abs(numbers)))
    if magnitude < 1e11:
        return "s"
    if magnitude < 1e14:
        return "ms"
    return "us" if magnitude < 1e17 else "ns"


def _seconds(number: float, unit: str) -> float:
    try:
        return float(number) / UNITS[unit]
    except OverflowError:
        return math.inf
