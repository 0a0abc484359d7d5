"""Fixtures of the loader tests: event log files written to tmp_path and read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model.data import CleanConfig, LoadedLog, load_log

Rows = list[tuple[str, str, str, int, int]]

NO_CLEANING = CleanConfig(
    drop_duplicates=False,
    min_day_fraction=None,
    bot_max_events_per_minute=None,
    bot_max_events_per_active_minute=None,
    min_events_per_user=None,
)


@pytest.fixture
def no_cleaning() -> CleanConfig:
    """Every cleaning step off."""
    return NO_CLEANING


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """write(name, text or bytes) -> the path of that file under tmp_path."""

    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def load() -> Callable[..., LoadedLog]:
    """load_log without progress and, unless `clean` is given, without cleaning."""

    def load(path: Path, **kwargs: object) -> LoadedLog:
        kwargs.setdefault("clean", NO_CLEANING)
        return load_log(path, progress=False, **kwargs)  # type: ignore[arg-type]

    return load


@pytest.fixture
def rows_of() -> Callable[[LoadedLog], Rows]:
    """The loaded log as (user, item, category, behavior, ts) rows with the raw ids."""

    def rows_of(loaded: LoadedLog) -> Rows:
        lg = loaded.log
        return [
            (lg.user_ids[u], lg.item_ids[i], lg.category_ids[c], int(b), int(t))
            for u, i, c, b, t in zip(
                lg.user, lg.item, lg.category, lg.behavior, lg.ts, strict=True
            )
        ]

    return rows_of
