"""Encoding batches: every malformed row skipped and counted by its reason, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model.data import LoadedLog

T0 = 1_511_600_000  # inside Taobao's span


def test_malformed_rows_are_skipped_and_counted_by_reason(
    write: Callable[[str, str | bytes], Path],
    load: Callable[..., LoadedLog],
    rows_of: Callable,
) -> None:
    path = write(
        "ub.csv",
        b"1,10,7,pv,1511600000\n"
        b"1,10,7,pv,1511600001,extra\n"  # too many fields
        b"1,,7,pv,1511600002\n"  # empty item
        b"1,10,7,pv,15116x0003\n"  # bad number
        b"1,10,7,pv,-5\n"  # before 1970
        b"1,10,7,click,1511600004\n"  # unknown behavior
        b"1,\xff\xfe,7,pv,1511600005\n"  # not UTF-8
        b"2,10,7,buy,1511600006\n"
        b"3,10,7,pv",  # truncated last line, no newline
    )
    loaded = load(path)
    assert loaded.report.malformed == {
        "wrong_field_count": 2,
        "empty_id": 1,
        "bad_timestamp": 2,
        "unknown_behavior": 1,
        "bad_encoding": 1,
    }
    assert loaded.report.rows_read == 9
    assert loaded.report.valid_rows == 2
    assert loaded.report.unknown_behaviors == {"click": 1}
    assert len(loaded.report.malformed_examples) == 5
    assert [(r[0], r[4]) for r in rows_of(loaded)] == [("1", T0), ("2", T0 + 6)]
