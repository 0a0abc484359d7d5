"""The baselines the evaluator compares the Transformer with, by name, and how each is fitted.

Each is fitted on the events before the test cutoff (what the Transformer may see while
training) and scored on exactly the Transformer's prediction points:

    popularity  behavior priors, purchase / return base rates, most popular items/categories
    markov      first-order transitions from the last event, popularity back-off
    last        repeat the last behavior; the window's categories / items most recent
                first, popularity for the rest
    gru         the network's GRU encoder with the same embeddings and heads: trained with
                `model.train.fit(encoder="gru")` and scored through PyTorch
                (`model.baselines.gru`)
    lightgbm    gradient-boosted trees on recency/frequency features (behavior, purchase)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from model.baselines.classical import Last, Markov, Popularity
from model.baselines.gradient_boosting import LightGBM
from model.baselines.gru import GruOptions, fit_gru
from model.baselines.training_data import TrainingData
from model.evaluation.protocol import Horizon, Scorer
from model.sequences import EventLog, TimeSplit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fitting:
    """Everything a baseline may be fitted from: the log, its split, the compared model's
    label parameters, and, for the GRU, the model's manifest extras and training options."""

    log: EventLog
    split: TimeSplit
    h: Horizon
    manifest_extra: Mapping[str, Any] = field(default_factory=dict)
    gru: GruOptions = GruOptions()
    progress: bool = False

    @cached_property
    def training_data(self) -> TrainingData:
        """Built once, for every baseline fitted from this Fitting."""
        return TrainingData.build(self.log, self.split, self.h)


FITTERS: dict[str, Callable[[Fitting], Scorer]] = {
    "popularity": lambda f: Popularity(f.training_data),
    "markov": lambda f: Markov(f.training_data),
    "last": lambda f: Last(f.training_data),
    "gru": lambda f: fit_gru(
        f.log, f.split, f.manifest_extra, f.h, options=f.gru, progress=f.progress
    ),
    "lightgbm": lambda f: LightGBM(f.training_data, f.h, f.split),
}
BASELINES = tuple(FITTERS)  # in the order of the report's columns


def select(baselines: bool | list[str]) -> list[str]:
    """The named baselines in report order: all of them for True, none for False."""
    if baselines is True:
        return list(BASELINES)
    if baselines is False:
        return []
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {', '.join(BASELINES)}")
    return [b for b in BASELINES if b in baselines]


def fit_baseline(name: str, fitting: Fitting) -> Scorer:
    """Fit one baseline by name."""
    if name not in FITTERS:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    logger.info("fitting baseline %s on the events before %d", name, fitting.split.test_cutoff)
    return FITTERS[name](fitting)
