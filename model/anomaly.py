"""The anomaly score: how unlike an ordinary shopper's a window is, for risk control.

Two kinds of evidence, each measured once for the trainer and the service:
- improbable: the window's mean per-event surprise under the model (the exported graph's
  `event_surprise`: -log p(behavior) - log p(category) of each event given those before),
  shrunk towards the validation windows' median as if PRIOR_EVENTS ordinary events were
  added (one odd click in a two-event window is weak evidence, twenty are strong);
- scripted: `model.features.scripted_features` (repeated events, gaps under a few seconds,
  gaps of one metronomic length), which the model's surprise misses: a bot repeating one
  view is the least surprising window there is.

Each measure becomes a level: the share of the validation windows (ordinary shoppers, bots
removed by the loader's cleaning) that measure strictly less, read from the manifest's
quantile tables. The window's strongest level is then itself ranked among the validation
windows' strongest levels (the "combined" table), so that looking at four measures does not
make ordinary windows look unusual: the score is the share of ordinary validation windows
that look less unusual than this one on their most unusual measure. Ordinary windows score
evenly in [0, 1]; a threshold of 0.99 flags about 1 % of them, and scripted or improbable
windows, beyond anything in the validation period, score 1.
NumPy only: the service imports this without PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from model.features import SCRIPTED_FEATURES, Features, FeatureSpec, scripted_features

COMBINED = "combined"
SURPRISE = "surprise"
PRIOR_EVENTS = 5.0
TABLE_LEVELS = 1001  # quantiles 0.000, 0.001, ..., 1.000 of each measure


def mean_surprise(event_surprise: np.ndarray, behavior: np.ndarray) -> np.ndarray:
    """(B,) each window's mean per-event surprise over the events with a prediction before
    them (all but its first; windows are left-padded); NaN for windows of fewer than 2."""
    n = (behavior > 0).sum(axis=1) - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, event_surprise.sum(axis=1) / np.maximum(n, 1), np.nan)


def quantile_table(values: np.ndarray) -> list[float]:
    """TABLE_LEVELS quantiles of values (the validation windows'), what `Levels` reads."""
    if len(values) == 0:
        return []
    return np.quantile(values, np.linspace(0.0, 1.0, TABLE_LEVELS)).tolist()


class Levels:
    """A quantile table (`quantile_table`) read as levels: the share of the table's sample
    below each value, linear between the table's distinct quantiles, each at the first level
    it holds (values tied with many windows are not unusual), 0 at or below the least, 1
    above the greatest; NaN from an empty table."""

    def __init__(self, table: Sequence[float]) -> None:
        q = np.asarray(table, dtype=np.float64)
        self.distinct, first = np.unique(q, return_index=True)
        self.levels = first / max(len(q) - 1, 1)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if len(self.distinct) == 0:
            return np.full(values.shape, np.nan)
        return np.where(values > self.distinct[-1], 1.0,
                        np.interp(values, self.distinct, self.levels))


class AnomalyScorer:
    """The score of `model.anomaly` from an artifact's tables: `surprise` (the manifest's
    `surprise_quantiles` of the mean surprise, whose median the shrinkage pulls towards) and
    `tables` (its `anomaly_quantiles`: "surprise" (shrunk), one per scripted measure and
    "combined")."""

    def __init__(self, surprise: Sequence[float], tables: Mapping[str, Sequence[float]],
                 spec: FeatureSpec) -> None:
        self.surprise = list(surprise)
        self.tables = {k: list(v) for k, v in tables.items()}
        self.spec = spec
        # read once per model, not per request
        self._prior = float(np.median(self.surprise)) if self.surprise else 0.0
        self._surprise_levels = Levels(self.surprise)
        self._levels = {k: Levels(v) for k, v in self.tables.items()}

    def measures(self, features: Features, event_surprise: np.ndarray) -> np.ndarray:
        """(B, 2 + len(SCRIPTED_FEATURES)): the mean surprise, the shrunk one (see the module
        docstring), then the scripted measures."""
        behavior = features["behavior"]
        mean = mean_surprise(event_surprise, behavior)
        n = np.maximum((behavior > 0).sum(axis=1) - 1, 0)
        shrunk = (np.nan_to_num(mean) * n + PRIOR_EVENTS * self._prior) / (n + PRIOR_EVENTS)
        return np.column_stack([mean, np.where(np.isnan(mean), np.nan, shrunk),
                                scripted_features(features, self.spec)])

    def strongest(self, measures: np.ndarray) -> np.ndarray:
        """(B,) each window's highest level over its measures; without the tables of an
        older artifact, the mean surprise's level alone."""
        if SURPRISE not in self._levels:
            return self._surprise_levels(measures[:, 0])
        levels = [self._levels[SURPRISE](measures[:, 1])]
        for k, name in enumerate(SCRIPTED_FEATURES):
            levels.append(self._levels[name](measures[:, 2 + k]))
        return np.max(np.column_stack(levels), axis=1)

    def scores(self, features: Features,
               event_surprise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B,) mean surprise and (B,) anomaly score of featurized windows; NaN for windows of
        fewer than two events (nothing to judge) or without tables."""
        measures = self.measures(features, event_surprise)
        strongest = self.strongest(measures)
        if COMBINED in self._levels:
            strongest = self._levels[COMBINED](strongest)
        return measures[:, 0], np.where(np.isnan(measures[:, 0]), np.nan, strongest)


def fit_tables(scorer: AnomalyScorer, features: Features,
               event_surprise: np.ndarray) -> dict[str, list[float]]:
    """The `anomaly_quantiles` of the validation windows (those of two events or more):
    the shrunk surprise's and each scripted measure's table, then the "combined" table of
    their strongest levels."""
    measures = scorer.measures(features, event_surprise)
    measures = measures[~np.isnan(measures[:, 0])]
    tables = {name: quantile_table(measures[:, 1 + k])
              for k, name in enumerate((SURPRISE, *SCRIPTED_FEATURES))}
    fitted = AnomalyScorer(scorer.surprise, tables, scorer.spec)
    tables[COMBINED] = quantile_table(fitted.strongest(measures))
    return tables
