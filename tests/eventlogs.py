"""Small EventLogs written out in tests as rows of codes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

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


# Rows (user, item, category, behavior, ts) of a small random log: 4 users, 5 items, 3
# categories (`event_log(rows, USERS, ITEMS, CATEGORIES)`).
USERS = ["u0", "u1", "u2", "u3"]
ITEMS = ["i0", "i1", "i2", "i3", "i4"]
CATEGORIES = ["c0", "c1", "c2"]


def event_rows(min_size: int) -> st.SearchStrategy[list[tuple[int, ...]]]:
    return st.lists(
        st.tuples(
            st.integers(0, 3),  # user
            st.integers(0, 4),  # item
            st.integers(0, 2),  # category
            st.integers(0, 3),  # behavior
            st.integers(0, 200_000),  # ts
        ),
        min_size=min_size,
        max_size=40,
    )
