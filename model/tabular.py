"""Recency / frequency features of a featurized window at the moment it is asked about.

What a shop's analyst would start from (counts of each behavior in the window and in the
hour and day before its last event, time from each behavior to the last event, how often
the last item / category was touched, the session so far, the local clock), computed from
the window's model inputs alone, and the idle time: from the last event to the request.
Only the idle time depends on when the question is asked. The trainer computes them on its
prediction points, the service on the windows it reads from Redis: one function, so the two
halves measure alike. The gradient-boosted head (`model.head`) reads them beside the
network's outputs; the request time is what makes its answers time-aware. NumPy only.
"""

from __future__ import annotations

import numpy as np

from model.features import BEHAVIOR_NAMES, N_BEHAVIORS, Behavior, Features, FeatureSpec

HOUR = 3600
DAY = 86400
SESSION_GAP = 1800

TABULAR_FEATURES = (
    "window_events",
    *(f"window_{b}" for b in BEHAVIOR_NAMES),
    *(f"hour_{b}" for b in BEHAVIOR_NAMES),
    *(f"day_{b}" for b in BEHAVIOR_NAMES),
    "last_behavior",
    "gap_before_last",
    "idle_seconds",
    *(f"since_{b}" for b in BEHAVIOR_NAMES),
    "last_item_touches",
    "last_item_carted",
    "last_item_faved",
    "last_category_touches",
    "distinct_items",
    "distinct_categories",
    "session_events",
    "session_seconds",
    "hour_of_day",
    "weekday",
)
CATEGORICAL = ("last_behavior",)


def _distinct(codes: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Distinct codes among each row's real cells."""
    key = np.sort(np.where(real, codes, -1), axis=1)
    new = np.ones_like(real)
    new[:, 1:] = key[:, 1:] != key[:, :-1]
    return (new & (key >= 0)).sum(axis=1)


def tabular_features(features: Features, now: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """(B, len(TABULAR_FEATURES)) float32 of left-padded windows asked about at `now` (unix
    seconds, one per window; a time before the window's last event counts as no idle
    time). NaN where a feature is undefined (no such behavior in the window, no gap before
    a lone event); every window must hold at least one event."""
    behavior, ts = features["behavior"], features["ts"]
    item, category = features["item"], features["category"]
    b, width = behavior.shape
    real = behavior > 0
    code = behavior - 1  # -1 at padding
    last_ts = ts[:, -1]
    idle = np.maximum(np.asarray(now, dtype=np.int64) - last_ts, 0)
    age = last_ts[:, None] - ts
    per_behavior = code[:, :, None] == np.arange(N_BEHAVIORS)  # (B, T, 4), False at padding

    def counts(mask: np.ndarray) -> np.ndarray:
        return (per_behavior & mask[:, :, None]).sum(axis=1)

    latest = np.where(per_behavior, ts[:, :, None], np.iinfo(np.int64).min).max(axis=1)
    since = np.where(per_behavior.any(axis=1), last_ts[:, None] - latest, np.nan)
    same_item = real & (item == item[:, -1:])
    gaps = np.diff(ts, axis=1)
    starts_session = np.zeros_like(real)
    starts_session[:, 1:] = gaps > SESSION_GAP
    first = width - real.sum(axis=1)  # the first real column (left padding)
    starts_session[np.arange(b), first] = True
    session_start = np.where(starts_session & real, np.arange(width), -1).max(axis=1)
    local = last_ts + spec.tz_offset_seconds
    columns = [
        real.sum(axis=1)[:, None],
        counts(real),
        counts(age <= HOUR),
        counts(age <= DAY),
        code[:, -1:],
        np.where(real[:, -2], last_ts - ts[:, -2], np.nan)[:, None] if width > 1
        else np.full((b, 1), np.nan),
        idle[:, None],
        since,
        same_item.sum(axis=1)[:, None],
        (same_item & (code == Behavior.CART)).any(axis=1)[:, None],
        (same_item & (code == Behavior.FAV)).any(axis=1)[:, None],
        (real & (category == category[:, -1:])).sum(axis=1)[:, None],
        _distinct(item, real)[:, None],
        _distinct(category, real)[:, None],
        (width - session_start)[:, None],
        (last_ts - ts[np.arange(b), session_start])[:, None],
        ((local // HOUR) % 24)[:, None],
        ((local // DAY + 3) % 7)[:, None],
    ]
    return np.concatenate([np.asarray(c, dtype=np.float32) for c in columns], axis=1)


# The network's answers the head reads beside the tabular features: its log-probability of
# each next behavior and its purchase and return logits.
NETWORK_COLUMNS = (
    *(f"net_log_{b}" for b in BEHAVIOR_NAMES), "net_purchase_logit", "net_return_logit",
)
HEAD_INPUTS = (*TABULAR_FEATURES, *NETWORK_COLUMNS)
EPS = 1e-7
# The head's inputs lie on a grid where the midpoint of any two values is a float32: whole
# numbers up to 2**23 (seconds beyond that, 97 days, read as 97 days) and the network's
# log-odds in steps of 2**-10. LightGBM splits at such midpoints, computed in float64, and
# ONNX's trees compare in float32: off the grid a value equal to its float32-rounded split
# would take the other branch.
MAX_WHOLE = float(2**23)
LOGIT_STEP = 2.0**-10


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def head_input(tabular: np.ndarray, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """(B, len(HEAD_INPUTS)) float32: the tabular features and the network's uncalibrated
    probabilities (`behavior_probs`, `purchase_prob`, `return_prob`) as log-odds."""
    behavior = np.log(np.clip(np.asarray(outputs["behavior_probs"], np.float64), EPS, 1))
    network = np.concatenate([behavior, _logit(outputs["purchase_prob"])[:, None],
                              _logit(outputs["return_prob"])[:, None]], axis=1)
    return np.concatenate([np.minimum(tabular, MAX_WHOLE),
                           np.round(network / LOGIT_STEP) * LOGIT_STEP], axis=1,
                          dtype=np.float32)
