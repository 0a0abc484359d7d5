"""The trainer's progress bars: tqdm on a terminal, periodic log lines elsewhere.

On a terminal, stderr gets a tqdm bar redrawn in place, and the log lines between bars start
a line of their own (`model.cli` routes logging through tqdm).

Elsewhere (nohup, CI, docker logs, `bench/scale.py`'s children writing to a file), redraws
would be kept as text: every carriage return, a bar's last state twice, a log line glued to
it. There a bar asked to show reports its state as ordinary INFO lines of the "seqcast"
logger instead: at most one every LOG_INTERVAL_S seconds while it runs and one when it
closes, each with the bar's description, count (of total), rate, time left and postfix:

    seqcast: training epoch 1: 1200/40000 batch, 3.10 batch/s, eta 3:28:36, loss=17.203
    seqcast: training epoch 1: 40000/40000 batch in 3:35:03, 3.10 batch/s, loss=16.918

The figures are tqdm's own (`tqdm.format_meter`: its smoothed rate while running, the
average over the whole bar at the close), with nothing written to stderr but the log.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")

LOG_INTERVAL_S = 60.0
"""The least time between two log lines of one bar, while it runs (not the line at the close)."""

log = logging.getLogger("seqcast")

_RUNNING = "{desc}: {n_fmt}/{total_fmt}{unit}, {rate_noinv_fmt}, eta {remaining}{postfix}"
_RUNNING_NO_TOTAL = "{desc}: {n_fmt}{unit}, {rate_noinv_fmt}{postfix}"
_CLOSED = "{desc}: {n_fmt}/{total_fmt}{unit} in {elapsed}, {rate_noinv_fmt}{postfix}"
_CLOSED_NO_TOTAL = "{desc}: {n_fmt}{unit} in {elapsed}, {rate_noinv_fmt}{postfix}"


def progress_bar(
    iterable: Iterable[T] | None = None, *, desc: str, show: bool = True, **options: Any
) -> tqdm[T]:
    """`tqdm(iterable, desc=..., **options)`: drawn on stderr as "seqcast: " + desc when
    `show` and stderr is a terminal, logged by "seqcast" (a `LoggedBar`) when `show` and it
    is not, and only counting when not `show`."""
    if show and not sys.stderr.isatty():
        return LoggedBar(iterable, desc=desc, **options)
    return tqdm(iterable, desc=f"seqcast: {desc}", file=sys.stderr, disable=not show,
                **options)


class _Nowhere(io.TextIOBase):
    """Where a LoggedBar's tqdm writes its clears and line ends: discarded."""

    def write(self, s: str) -> int:
        return len(s)


class LoggedBar(tqdm):
    """A tqdm bar that logs its state (at most once every LOG_INTERVAL_S, and at the close)
    instead of drawing it; tqdm counts, times and formats as for a drawn bar."""

    def __init__(self, iterable: Iterable[Any] | None = None, **options: Any) -> None:
        self._interval = LOG_INTERVAL_S  # read now, so that a test may patch the constant
        self._last_log: float | None = None
        self._closed = False
        options.pop("file", None)
        super().__init__(iterable, file=_Nowhere(), **options)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Called by tqdm on each refresh: a log line when LOG_INTERVAL_S has passed since
        the bar started or logged last."""
        if self._closed or not hasattr(self, "start_t"):  # closing, or tqdm's first refresh
            return True
        now = self._time()
        if now - (self.start_t if self._last_log is None else self._last_log) < self._interval:
            return True
        self._last_log = now  # before logging: a handler writing through tqdm refreshes bars
        log.info("%s", self._line(closed=False))
        return True

    def close(self) -> None:
        """One last log line, with the average rate over the whole bar, then tqdm's close."""
        if not self._closed and not getattr(self, "disable", True):
            self._closed = True
            log.info("%s", self._line(closed=True))
        super().close()

    def _line(self, *, closed: bool) -> str:
        meter = dict(self.format_dict)
        total = meter["total"]
        known = bool(total) and meter["n"] < total + 0.5  # as tqdm: past its total, none known
        if closed:
            meter["rate"] = None  # format_meter's average, (n - initial) / elapsed
            meter["bar_format"] = _CLOSED if known else _CLOSED_NO_TOTAL
        else:
            meter["bar_format"] = _RUNNING if known else _RUNNING_NO_TOTAL
        meter["unit"] = " " + str(meter["unit"]).strip()
        meter["ncols"] = None  # never trimmed to a width
        # one line, single spaces: tqdm pads rates to 5 places, a postfix may hold a newline
        return " ".join(self.format_meter(**meter).split())
