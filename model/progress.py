"""The trainer's progress bars: tqdm on stderr, on a terminal only.

A terminal redraws a bar in place and the log lines between bars start a line of their own
(`model.cli` routes logging through tqdm). A pipe or a file would keep every carriage-return
redraw as text, a bar's last state twice and a log line glued to it: there the log lines
tell the progress, one phase at a time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_bar(
    iterable: Iterable[T] | None = None, *, desc: str, show: bool = True, **options: Any
) -> tqdm[T]:
    """`tqdm(iterable, desc="seqcast: " + desc, ...)` on stderr, shown when `show` and
    stderr is a terminal."""
    return tqdm(iterable, desc=f"seqcast: {desc}", file=sys.stderr,
                disable=not (show and sys.stderr.isatty()), **options)
