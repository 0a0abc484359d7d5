"""model.progress: a bar drawn on a terminal, logged a line an interval elsewhere, else silent."""

from __future__ import annotations

import io
import logging
import re

import pytest

from model import progress
from model.progress import progress_bar


class FakeClock:
    """tqdm's clock (`tqdm.std.time`), moved by hand: the test needs no sleeping."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("tqdm.std.time", fake)
    return fake


def run_epoch(clock: FakeClock, n: int = 100) -> None:
    """A training-loop-like bar: one batch a (fake) second, the postfix set every 10."""
    bar = progress_bar(range(n), desc="training epoch 1", unit="batch", leave=False)
    for i in bar:
        clock.t += 1.0
        if i % 10 == 9:
            bar.set_postfix(loss=f"{17.2:.3f}", events_s=f"{18_400:,}")
    bar.close()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    assert all(r.name == "seqcast" and r.levelno == logging.INFO for r in caplog.records)
    return [r.getMessage() for r in caplog.records]


def test_a_shown_bar_off_a_terminal_logs_its_state_at_most_once_an_interval(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stderr = io.StringIO()  # not a terminal: nohup, CI, a bench child's log file
    monkeypatch.setattr("sys.stderr", stderr)
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 10.0)
    with caplog.at_level(logging.INFO, logger="seqcast"):
        run_epoch(clock)
    *running, closed = lines(caplog)
    assert stderr.getvalue() == ""  # no bar, no carriage return, only the log
    assert not any("\r" in line or "\n" in line for line in [*running, closed])
    # 100 fake seconds, tqdm refreshing every batch: one line each 10 s, not one a refresh
    counts = [int(re.match(r"training epoch 1: (\d+)/100 batch, ", line)[1])  # type: ignore[index]
              for line in running]
    assert counts == list(range(9, 100, 10)), running  # tqdm counts a batch once it is done
    assert all("1.00 batch/s, eta " in line for line in running), running  # tqdm's rate
    assert "events_s=18,400" in running[-1] and "loss=17.200" in running[-1]
    assert closed == "training epoch 1: 100/100 batch in 01:40, 1.00 batch/s, " \
                     "events_s=18,400, loss=17.200"


def test_the_interval_is_what_holds_the_lines_back(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    with caplog.at_level(logging.INFO, logger="seqcast"):
        run_epoch(clock)
    assert len(lines(caplog)) > 50  # about one a refresh: the 10 s above did the limiting


def test_a_bar_without_a_total_logs_its_count_and_rate(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 5.0)
    with caplog.at_level(logging.INFO, logger="seqcast"), progress_bar(
        desc="load log.csv", unit=" rows", unit_scale=True
    ) as bar:
        for _ in range(10):
            clock.t += 1.0
            bar.update(100_000)
    assert lines(caplog) == ["load log.csv: 500k rows, 100k rows/s",
                             "load log.csv: 1.00M rows, 100k rows/s",
                             "load log.csv: 1.00M rows in 00:10, 100k rows/s"]


def test_a_bar_not_shown_logs_and_draws_nothing(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for stderr in (io.StringIO(), Terminal()):
        monkeypatch.setattr("sys.stderr", stderr)
        monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
        with caplog.at_level(logging.INFO, logger="seqcast"), progress_bar(
            total=10, desc="evaluate test", unit="points", show=False
        ) as bar:
            for _ in range(10):
                clock.t += 1.0
                bar.update()
        assert stderr.getvalue() == "" and caplog.records == []


def test_on_a_terminal_the_bar_is_drawn_and_not_logged(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    with caplog.at_level(logging.INFO, logger="seqcast"):
        run_epoch(clock, n=20)
    assert "seqcast: training epoch 1:" in terminal.getvalue() and "\r" in terminal.getvalue()
    assert caplog.records == []
