"""Calibration on the validation points: what turns the network's outputs into the numbers
the service reports.

Temperature scaling (Guo et al., 2017) for the behavior softmax and the purchase and return
logits, with the expected calibration error before and after. One scalar T per head divides
the logits: it changes confidence, never the ranking, so AUC, accuracy and recall are
untouched while log loss and ECE improve. The exported graph bakes the temperatures in (see
`model.net.scorer.Scorer`).

The surprise quantiles: the distribution of a window's mean per-event surprise, which the
service turns a window's surprise into a percentile (its anomaly score) with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from model.metrics import Reliability, reliability

HEADS = ("behavior", "purchase", "return")
MIN_T, MAX_T = 0.05, 20.0
QUANTILES = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Calibration:
    """Fitted temperatures and the validation reliability of each head before and after.

    The behavior head's reliability is top-label (max probability vs. correct argmax); the
    binary heads' is P(y = 1) vs. y. A head without labelled validation points keeps T = 1
    and has no reliability entry.
    """

    temperatures: dict[str, float]
    before: dict[str, Reliability] = field(default_factory=dict)
    after: dict[str, Reliability] = field(default_factory=dict)

    @property
    def ece_before(self) -> dict[str, float]:
        return {head: r.ece for head, r in self.before.items()}

    @property
    def ece_after(self) -> dict[str, float]:
        return {head: r.ece for head, r in self.after.items()}

    def manifest_entry(self) -> dict[str, float]:
        """Flat numbers for `Manifest.calibration`: temperatures and ECEs."""
        out = {f"temperature_{h}": t for h, t in self.temperatures.items()}
        out.update({f"ece_{h}_before": e for h, e in self.ece_before.items()})
        out.update({f"ece_{h}_after": e for h, e in self.ece_after.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperatures": dict(self.temperatures),
            "before": {h: r.to_dict() for h, r in self.before.items()},
            "after": {h: r.to_dict() for h, r in self.after.items()},
        }


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T minimising validation NLL of logits / T.

    logits (N, K) with integer labels (N,) for a softmax head, or logits (N,) with 0/1 labels
    for a binary head. Optimises log T (so T stays positive) with L-BFGS; T is clipped to
    [MIN_T, MAX_T] so a degenerate validation set cannot produce an absurd graph constant.
    """
    logits = logits.detach().double()
    binary = logits.dim() == 1
    target = labels.double() if binary else labels.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        opt.zero_grad()
        scaled = logits / log_t.exp()
        if binary:
            loss = F.binary_cross_entropy_with_logits(scaled, target)
        else:
            loss = F.cross_entropy(scaled, target)
        loss.backward()
        return loss

    opt.step(nll)
    t = float(log_t.detach().exp())
    if not math.isfinite(t):
        return 1.0
    return min(max(t, MIN_T), MAX_T)


def _reliability(logits: torch.Tensor, labels: torch.Tensor, t: float) -> Reliability:
    if logits.dim() == 1:
        prob = torch.sigmoid(logits.double() / t).numpy()
        return reliability(prob, labels.numpy())
    probs = torch.softmax(logits.double() / t, dim=-1).numpy()
    correct = (probs.argmax(axis=1) == labels.numpy()).astype(np.float64)
    return reliability(probs.max(axis=1), correct)


def calibrate(heads: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Calibration:
    """heads: name -> (logits, labels) of the validation points, censored points removed.

    Names are those of HEADS; a head with no points keeps T = 1.
    """
    temperatures = {head: 1.0 for head in HEADS}
    before: dict[str, Reliability] = {}
    after: dict[str, Reliability] = {}
    for head, (logits, labels) in heads.items():
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; calibrated heads: {', '.join(HEADS)}")
        if len(labels) == 0:
            continue
        t = fit_temperature(logits, labels)
        temperatures[head] = t
        before[head] = _reliability(logits, labels, 1.0)
        after[head] = _reliability(logits, labels, t)
    return Calibration(temperatures=temperatures, before=before, after=after)


def surprise_quantiles(surprise: np.ndarray, behavior: np.ndarray) -> list[float]:
    """Quantiles 0.00, 0.01, ..., 1.00 of the windows' mean per-event surprise.

    surprise (N, T): the exported graph's event_surprise of N windows; behavior (N, T) their
    behavior input (0 at padding). A window's first event has no prediction before it, so
    the mean is over the others, and one-event windows are left out. All zeros when no
    window has two events."""
    n = (behavior > 0).sum(axis=1) - 1  # events with a prediction before them
    has = n > 0
    means = surprise.sum(axis=1)[has] / n[has]
    if len(means) == 0:
        return [0.0] * len(QUANTILES)
    return np.quantile(means, QUANTILES).tolist()
