"""The trainer's vocabularies: which raw ids get their own embedding row."""

from __future__ import annotations

import numpy as np

from model.features import Vocab


def build_vocab(
    raw_ids: np.ndarray, codes: np.ndarray, min_count: int, n_oov: int, keep: list[str]
) -> Vocab:
    """Ids kept from an earlier model first (same indices), then ids seen at least min_count
    times in `codes`, most frequent first. Everything else falls into hashed OOV buckets."""
    counts = np.bincount(codes, minlength=len(raw_ids))
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= min_count]
    kept = set(keep)
    new = [str(raw_ids[c]) for c in order if str(raw_ids[c]) not in kept and str(raw_ids[c])]
    return Vocab(list(keep) + new, n_oov)

