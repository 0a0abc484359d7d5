"""Behavior values the mapping does not know: dropped with a warning that counts them per
value, and a log that would lose most of its rows that way is refused unless told."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from model.data import DataError, LoadedLog, parse_mapping

T0 = 1_511_600_000
COLUMNS = parse_mapping("user=uid,item=sku,behavior=action,timestamp=ts")
BEHAVIORS = parse_mapping("order=buy,view=view")


def _log(write: Callable[[str, str], Path], actions: list[str]) -> Path:
    rows = [f"u{i % 3},sku{i},{a},{T0 + i}" for i, a in enumerate(actions)]
    return write("log.csv", "uid,sku,action,ts\n" + "\n".join(rows) + "\n")


def test_a_log_mostly_unmapped_is_refused_with_the_counts(
    write: Callable[[str, str], Path], load: Callable[..., LoadedLog]
) -> None:
    path = _log(write, ["click"] * 6 + ["hover"] + ["view"])
    with pytest.raises(DataError) as refused:
        load(path, columns=COLUMNS, behavior_map=BEHAVIORS)
    message = str(refused.value)
    assert "7 of 8 rows (87.5%)" in message
    assert "'click': 6" in message and "'hover': 1" in message
    assert "--allow-unmapped" in message and "--behavior-map" in message


def test_allow_unmapped_loads_what_is_mapped_and_the_report_counts_the_rest(
    write: Callable[[str, str], Path],
    load: Callable[..., LoadedLog],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = _log(write, ["click"] * 6 + ["view", "order"])
    with caplog.at_level(logging.WARNING, logger="model.data.load"):
        loaded = load(path, columns=COLUMNS, behavior_map=BEHAVIORS, allow_unmapped=True)
    assert loaded.report.valid_rows == 2
    assert loaded.report.unknown_behaviors == {"click": 6}
    assert loaded.report.malformed == {"unknown_behavior": 6}
    assert loaded.report.to_dict()["allow_unmapped"] is True
    assert "6 of 8 rows (75.0%)" in caplog.text and "'click': 6" in caplog.text


def test_a_few_unmapped_rows_are_dropped_with_a_warning(
    write: Callable[[str, str], Path],
    load: Callable[..., LoadedLog],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = _log(write, ["view", "order", "view", "wishlist"])
    with caplog.at_level(logging.WARNING, logger="model.data.load"):
        loaded = load(path, columns=COLUMNS, behavior_map=BEHAVIORS)
    assert loaded.report.valid_rows == 3
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "1 of 4 rows (25.0%)" in caplog.text and "'wishlist': 1" in caplog.text
