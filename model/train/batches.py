"""Training batches: the indexed log, its windows, and the per-position targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.features import Features, FeatureSpec, featurize_indexed, left_padded_offsets
from model.sequences import CENSORED, EventLog, purchase_labels, return_labels, window_rows


@dataclass(frozen=True)
class Indexed:
    """The flat event arrays featurize_indexed reads, with targets and labels per event:
    compact columns (int32 vocabulary rows, int8 codes and labels, int64 seconds; 20 bytes
    an event), widened to int64 per batch only."""

    item: np.ndarray
    category: np.ndarray
    behavior: np.ndarray
    ts: np.ndarray
    has_next: np.ndarray  # the next event belongs to the same user
    purchase: np.ndarray
    returns: np.ndarray

    @classmethod
    def of(
        cls, events: EventLog, items: np.ndarray, categories: np.ndarray, horizon: int,
        return_gap: int, known_until: int,
    ) -> Indexed:
        """events with item and category codes mapped through the index tables, labelled
        with what is known at known_until."""
        same_user = np.zeros(len(events), dtype=bool)
        same_user[:-1] = events.user[1:] == events.user[:-1]
        return cls(
            item=items.astype(np.int32)[events.item],
            category=categories.astype(np.int32)[events.category],
            behavior=events.behavior.astype(np.int8),
            ts=events.ts,
            has_next=same_user,
            purchase=purchase_labels(events, horizon, known_until).astype(np.int8),
            returns=return_labels(events, horizon, return_gap, known_until).astype(np.int8),
        )

    def user_starts(self) -> np.ndarray:
        """The first event of each user (the events are grouped by user)."""
        if len(self.has_next) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(([0], np.flatnonzero(~self.has_next[:-1]) + 1)).astype(np.int64)

    def batch(
        self, starts: np.ndarray, lengths: np.ndarray, spec: FeatureSpec, width: int
    ) -> tuple[Features, np.ndarray]:
        """Features of windows events[start : start + length], left-padded to width, and the
        (B, width) flat index of the event at each position (-1 at padding).

        Only the batch's events are handed to featurize_indexed (rebased), so a batch costs
        O(batch) however long the log is."""
        feats = window_features(self.item, self.category, self.behavior, self.ts, starts,
                                lengths, spec, width)
        offset = left_padded_offsets(lengths, width)  # (B, W)
        where = np.where(offset >= 0, starts[:, None] + offset, -1)
        return feats, where

    def targets(self, where: np.ndarray) -> dict[str, np.ndarray]:
        """Per-position targets of `batch`'s flat index, int64: the next event's behavior,
        category and item (-1 where there is none), and the purchase and return labels."""
        safe = np.maximum(where, 0)
        ok = (where >= 0) & self.has_next[safe]
        nxt = np.minimum(safe + 1, len(self.ts) - 1)
        targets = {
            "behavior": np.where(ok, self.behavior[nxt], -1),
            "category": np.where(ok, self.category[nxt], -1),
            "item": np.where(ok, self.item[nxt], -1),
            "purchase": np.where(where >= 0, self.purchase[safe], CENSORED),
            "return": np.where(where >= 0, self.returns[safe], CENSORED),
        }
        return {k: v.astype(np.int64) for k, v in targets.items()}


def window_features(
    item: np.ndarray, category: np.ndarray, behavior: np.ndarray, ts: np.ndarray,
    starts: np.ndarray, lengths: np.ndarray, spec: FeatureSpec, width: int,
) -> Features:
    """Features of the windows [start : start + length] of flat event columns (item and
    category as vocabulary rows), left-padded to width. Only the windows' events are read."""
    rows = window_rows(starts, lengths)
    src = rows.events
    return featurize_indexed(item[src], category[src], behavior[src], ts[src], rows.starts,
                             rows.lengths, spec, width)


def training_windows(events: EventLog, window_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of each user's events cut into windows, counted back from the end."""
    u_start, u_end = events.user_bounds()
    n = u_end - u_start
    n_windows = -(-n // window_len)  # ceil
    user = np.repeat(np.arange(len(n)), n_windows)
    k_back = np.arange(n_windows.sum()) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    end = u_end[user] - k_back * window_len
    start = np.maximum(end - window_len, u_start[user])
    return start.astype(np.int64), (end - start).astype(np.int64)


def length_batches(
    order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
    group: int = 16,
) -> list[np.ndarray]:
    """Batches of window indices in `order`, grouped by similar length: every `group`
    batches' worth of windows is sorted by length, cut into batches, and the batches are
    shuffled. Short windows then share batches and padding (computed for nothing) shrinks."""
    batches: list[np.ndarray] = []
    span = batch_size * group
    for lo in range(0, len(order), span):
        chunk = order[lo : lo + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
