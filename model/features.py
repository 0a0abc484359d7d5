"""Featurization: raw behavior events -> the integer tensors the network reads.

This module is the one place where events become model inputs. The trainer calls it on
whole logs (vectorized, through `featurize_indexed`); the service calls it on the windows
it reads from Redis (through `featurize_windows`, which indexes them and ends in
`featurize_indexed`), so what the network saw in training is what it sees in production.
NumPy and pydantic only: the service imports this without PyTorch.

Index layout of every id vocabulary (items, categories):
    0                      padding
    1                      missing id (an event without a category)
    2 .. 1+K               the K ids known at training time
    2+K .. 1+K+n_oov       hashed out-of-vocabulary buckets: crc32(utf-8 id) % n_oov
Behaviors: 0 padding, 1 + Behavior code. Gap buckets: 0 padding, 1 "first event of the
window", 2.. bucket of the gap in seconds to the previous event. Hour: 0 padding, 1..24.
Weekday: 0 padding, 1..7 (Monday = 1).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict

PAD = 0
MISSING = 1
FIRST_KNOWN = 2
FIRST_EVENT_GAP = 1

INPUT_NAMES = ("item", "category", "behavior", "gap", "hour", "weekday")


class Behavior(IntEnum):
    """The four behavior types, in funnel order. Codes are what logs are converted to."""

    VIEW = 0
    FAV = 1
    CART = 2
    BUY = 3

    @classmethod
    def parse(cls, name: str) -> Behavior:
        try:
            return cls[name.upper()]
        except KeyError:
            allowed = ", ".join(b.name.lower() for b in cls)
            raise ValueError(f"unknown behavior {name!r}; allowed: {allowed}") from None


BEHAVIOR_NAMES = tuple(b.name.lower() for b in Behavior)
N_BEHAVIORS = len(Behavior)

# Log-spaced gap boundaries in seconds: same second, seconds, minutes, a session break
# (30 min), hours, a day, several days.
DEFAULT_GAP_EDGES = (
    1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400,
    2 * 86400, 7 * 86400,
)


class FeatureSpec(BaseModel):
    """Featurization parameters. Saved in the manifest; the service rebuilds it from there.

    hash names how out-of-vocabulary ids pick their bucket; crc32 is the only one this
    build knows, so a manifest naming another is refused rather than mis-featurized."""

    model_config = ConfigDict(frozen=True)

    window_len: int = 50
    gap_edges_seconds: tuple[int, ...] = DEFAULT_GAP_EDGES
    tz_offset_seconds: int = 0
    n_oov_items: int = 1024
    n_oov_categories: int = 64
    hash: Literal["crc32"] = "crc32"

    @cached_property
    def gap_edges(self) -> np.ndarray:
        """gap_edges_seconds as the array `gap_bucket` searches (built once per spec)."""
        return np.asarray(self.gap_edges_seconds, dtype=np.int64)

    @property
    def n_gap_buckets(self) -> int:
        """Embedding rows for the gap: padding, first-event, and len(edges) + 1 buckets."""
        return 2 + len(self.gap_edges_seconds) + 1


@dataclass
class Vocab:
    """Raw id (string) -> embedding index, with hashed buckets for ids never seen in training."""

    ids: list[str]
    n_oov: int
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {raw: FIRST_KNOWN + i for i, raw in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            raise ValueError("vocabulary ids must be unique")

    @property
    def n_known(self) -> int:
        return len(self.ids)

    @property
    def first_oov(self) -> int:
        """Row of the first hashed out-of-vocabulary bucket."""
        return FIRST_KNOWN + len(self.ids)

    @property
    def size(self) -> int:
        """Rows of the embedding table (and width of the output layer)."""
        return self.first_oov + self.n_oov

    def is_known(self, index: np.ndarray) -> np.ndarray:
        return (index >= FIRST_KNOWN) & (index < self.first_oov)

    def is_oov(self, index: np.ndarray) -> np.ndarray:
        """Rows of the hashed out-of-vocabulary buckets."""
        return index >= self.first_oov

    def id_of(self, index: int) -> str:
        return self.ids[index - FIRST_KNOWN]

    def index_of(self, raw: str | None) -> int:
        if raw is None or raw == "":
            return MISSING
        known = self._index.get(raw)
        if known is not None:
            return known
        return self.first_oov + zlib.crc32(raw.encode()) % self.n_oov

    def lookup(self, raws: Iterable[str | None]) -> np.ndarray:
        """Indices of raw ids: one dict lookup each, `index_of` only for those it misses."""
        raws = raws if isinstance(raws, (list, tuple)) else list(raws)
        get = self._index.get
        rows = [get(r, -1) for r in raws]  # type: ignore[arg-type]
        if -1 in rows:
            rows = [self.index_of(r) if i < 0 else i for r, i in zip(raws, rows, strict=True)]
        return np.array(rows, dtype=np.int64)


def window_oov(
    vocab: Vocab, raws: Sequence[str | None], rows: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The window's ids outside the vocabulary, as extra ranking candidates.

    The copy heads put probability on the window's own rows, hashed buckets included, so an
    id first seen after training (a new item the shopper keeps viewing) can still be ranked
    by its bucket's score. raws are the window's ids and rows their `Vocab.lookup` (the
    featurized input row, which the caller already has). Returns (distinct raw ids, first
    seen first; their bucket rows; log of how many of them share each one's bucket):
    candidates that collide in one bucket split its probability evenly, so the scores stay a
    distribution.
    """
    first_oov = vocab.first_oov
    found: dict[str, int] = {}
    for raw, row in zip(raws, rows.tolist(), strict=True):
        if row >= first_oov and raw is not None and raw not in found:
            found[raw] = row
    if not found:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    buckets = list(found.values())
    sharing = Counter(buckets)
    return (
        list(found),
        np.array(buckets, dtype=np.int64),
        np.log(np.array([sharing[r] for r in buckets], dtype=np.float64)),
    )


class Event(NamedTuple):
    """One behavior event as the service stores it and the featurizer reads it."""

    item_id: str
    category_id: str | None
    behavior: int
    ts: float


Features = dict[str, np.ndarray]


def gap_bucket(gaps: np.ndarray, edges: Sequence[int] | np.ndarray) -> np.ndarray:
    """Bucket of each gap in seconds (2 for the smallest); negative gaps count as zero."""
    return FIRST_EVENT_GAP + 1 + np.searchsorted(np.asarray(edges), np.maximum(gaps, 0), "right")


def featurize_indexed(
    item: np.ndarray,
    category: np.ndarray,
    behavior: np.ndarray,
    ts: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    spec: FeatureSpec,
    width: int | None = None,
) -> Features:
    """Flat arrays of already-indexed events plus windows -> model inputs, each window
    events[starts[b] : starts[b] + lengths[b]] left-padded into a (B, width) row.

    item/category are vocabulary indices, behavior Behavior codes, ts unix seconds; a window
    must lie inside one user's events, in time order. width defaults to the longest window.
    Windows are left-padded so that the most recent event is always the last column: the
    prediction heads read position -1 whatever the window length. Besides the network's
    INPUT_NAMES, `ts` holds each event's unix seconds (0 at padding): not a network input,
    what `model.tabular` reads the window's times from.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    category = np.asarray(category, dtype=np.int64)
    behavior = np.asarray(behavior, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.int64)
    if width is None:
        width = int(lengths.max(initial=0))
    n = len(starts)
    out = {name: np.zeros((n, width), dtype=np.int64) for name in (*INPUT_NAMES, "ts")}
    if n == 0 or width == 0:
        return out
    offset = left_padded_offsets(lengths, width)  # (B, W)
    valid = offset >= 0
    src = (starts[:, None] + offset)[valid]  # index into the flat arrays of each real cell

    local = ts + spec.tz_offset_seconds
    gaps = np.zeros_like(ts)
    np.subtract(ts[1:], ts[:-1], out=gaps[1:])

    out["ts"][valid] = ts[src]
    out["item"][valid] = item[src]
    out["category"][valid] = category[src]
    out["behavior"][valid] = behavior[src] + 1
    out["gap"][valid] = gap_bucket(gaps, spec.gap_edges)[src]
    rows = np.flatnonzero(lengths)
    out["gap"][rows, width - lengths[rows]] = FIRST_EVENT_GAP  # each window's first event
    out["hour"][valid] = ((local // 3600) % 24 + 1)[src]
    out["weekday"][valid] = ((local // 86400 + 3) % 7 + 1)[src]  # 1970-01-01 was a Thursday
    return out


def left_padded_offsets(lengths: np.ndarray, width: int) -> np.ndarray:
    """(B, width): each cell's position inside its window when windows of `lengths` are
    left-padded to `width`; negative at padding."""
    return np.arange(width) - (width - np.asarray(lengths)[:, None])


def featurize_windows(
    windows: Sequence[Sequence[Event]],
    spec: FeatureSpec,
    items: Vocab,
    categories: Vocab,
) -> Features:
    """Service path: windows of raw events (time order, oldest first) -> model inputs.

    Each window keeps its last spec.window_len events; the batch is padded to the longest.
    """
    kept = [w[-spec.window_len :] for w in windows]
    lengths = np.array([len(w) for w in kept], dtype=np.int64)
    starts = np.zeros_like(lengths)
    np.cumsum(lengths[:-1], out=starts[1:])
    flat = [e for w in kept for e in w]
    item_ids, category_ids, behaviors, times = zip(*flat, strict=True) if flat else ((),) * 4
    return featurize_indexed(
        items.lookup(item_ids),
        categories.lookup(category_ids),
        np.array(behaviors, dtype=np.int64),
        np.array(times, dtype=np.float64).astype(np.int64),  # whole seconds, as int(ts)
        starts,
        lengths,
        spec,
        int(lengths.max(initial=0)),
    )


def occlusions(window: Sequence[Event]) -> list[list[Event]]:
    """The window with each event left out in turn: attribution by occlusion.

    Scoring these next to the full window tells how much each past event moved a prediction
    (prediction(full) - prediction(without event i)).
    """
    return [list(window[:i]) + list(window[i + 1 :]) for i in range(len(window))]


# Scripted-behaviour measures of a window (`scripted_features`), in column order.
SCRIPTED_FEATURES = ("repeats", "fast_gaps", "modal_gaps")
FAST_GAP_SECONDS = 5  # a gap shorter than this is "fast": people read, scripts fire


def scripted_features(features: Features, spec: FeatureSpec) -> np.ndarray:
    """(B, 3) float64 counts of what scripted traffic does, per featurized window:

    repeats     events repeating an earlier (item, behavior) of the window: n - distinct
    fast_gaps   gaps shorter than FAST_GAP_SECONDS (those in its gap bucket or below)
    modal_gaps  gaps in the window's most common gap bucket (a metronome fills one)

    Counts rather than shares, so that evidence grows with the window: one quick click in a
    two-event window is not a burst of twenty. Computed from the model inputs alone, so the
    trainer (validation windows) and the service (request windows) measure alike; padding
    (behavior 0) and the window's first event (which has no gap) count for nothing.
    """
    item, behavior, gap = features["item"], features["behavior"], features["gap"]
    b, width = behavior.shape
    out = np.zeros((b, len(SCRIPTED_FEATURES)), dtype=np.float64)
    if b == 0 or width == 0:
        return out
    real = behavior > 0
    key = np.sort(np.where(real, item * (N_BEHAVIORS + 1) + behavior, -1), axis=1)
    new = np.ones_like(real)
    new[:, 1:] = key[:, 1:] != key[:, :-1]
    out[:, 0] = real.sum(axis=1) - (new & (key >= 0)).sum(axis=1)
    has_gap = real & (gap > FIRST_EVENT_GAP)
    fast_code = gap_bucket(np.array([FAST_GAP_SECONDS - 1]), spec.gap_edges)[0]
    out[:, 1] = (has_gap & (gap <= fast_code)).sum(axis=1)
    codes = np.arange(FIRST_EVENT_GAP + 1, spec.n_gap_buckets)
    per_code = ((gap[:, :, None] == codes) & has_gap[:, :, None]).sum(axis=1)  # (B, buckets)
    out[:, 2] = per_code.max(axis=1)
    return out
