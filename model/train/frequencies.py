"""What the training frequencies decide: the output biases' start, the negative-sampling
proposal, and the priors (the answer for a user with no window)."""

from __future__ import annotations

import numpy as np
import torch

from model.artifact import Priors
from model.features import N_BEHAVIORS
from model.net.losses import Negatives
from model.net.network import SeqNet
from model.sequences import EventLog
from model.train.batches import Indexed

TOP_PRIORS = 20


def popularity_biases(net: SeqNet, data: Indexed) -> None:
    """Start the item and category output biases at the log of the training frequencies
    (add-one smoothed), so the generator starts from popularity rather than uniform: a
    sampled softmax rarely draws a rare row as a negative, so a zero start leaves the long
    tail ranked as high as the head for many epochs."""
    with torch.no_grad():
        for bias, index in ((net.item_bias, data.item), (net.category_bias, data.category)):
            counts = np.bincount(index, minlength=len(bias)).astype(np.float64) + 1.0
            logf = np.log(counts / counts.sum())
            bias.copy_(torch.from_numpy(logf - logf.mean()).float())


class Proposal:
    """Negative-sampling distribution over vocabulary rows: training counts (+1) to the
    power 0.75 (word2vec's choice: frequent rows often, the tail still reachable)."""

    def __init__(self, index: np.ndarray, size: int, device: torch.device) -> None:
        counts = np.bincount(index, minlength=size).astype(np.float64) + 1.0
        q = counts**0.75
        self.q = torch.from_numpy(q / q.sum()).float().to(device)
        self.log_q = self.q.log()

    def sample(self, n: int, generator: torch.Generator) -> Negatives:
        """n rows drawn with replacement, shared by a batch's sampled softmax."""
        rows = torch.multinomial(self.q, n, replacement=True, generator=generator)
        return Negatives(rows, self.log_q[rows])


def priors(data: Indexed, events: EventLog) -> Priors:
    """Training frequencies of the behaviors and labels, and the most frequent ids."""
    behavior = np.bincount(data.behavior, minlength=N_BEHAVIORS)[:N_BEHAVIORS].astype(np.float64)
    purchase = data.purchase[data.purchase >= 0]
    returns = data.returns[data.returns >= 0]
    top_items = np.argsort(-np.bincount(events.item), kind="stable")[:TOP_PRIORS]
    top_cats = np.argsort(-np.bincount(events.category), kind="stable")[:TOP_PRIORS]
    return Priors.model_validate({
        "behavior": (behavior / max(behavior.sum(), 1.0)).tolist(),
        "purchase": float(purchase.mean()) if len(purchase) else 0.0,
        "return": float(returns.mean()) if len(returns) else 0.0,
        "top_items": [str(events.item_ids[c]) for c in top_items],
        "top_categories": [str(events.category_ids[c]) for c in top_cats],
    })
