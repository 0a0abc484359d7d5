"""Small EventLogs written out in tests as rows of codes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.sequences import EventLog


def _ids(given: Sequence[str] | None, prefix: str, codes: np.ndarray) -> np.ndarray:
    if given is not None:
        return np.array(given)
    return np.array([f"{prefix}{i}" for i in range(codes.max() + 1)], dtype=object)


def event_log(
    rows: Sequence[tuple[int, int, int, int, int]],
    users: Sequence[str] | None = None,
    items: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
) -> EventLog:
    """The EventLog of (user, item, category, behavior, ts) code rows; each id table defaults
    to u0.., i0.., c0.. up to the largest code used."""
    user, item, category, behavior, ts = (
        np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)
    )
    return EventLog.from_codes(
        user, item, category, behavior, ts,
        _ids(users, "u", user), _ids(items, "i", item), _ids(categories, "c", category),
    )
