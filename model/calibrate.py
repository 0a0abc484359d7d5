"""Calibration on the validation points: choosing the maps (`model.calibration`) that turn
the model's probabilities (the network's, or its gradient-boosted head's) into the ones the
service reports, and the surprise quantiles.

The validation points are split in two seeded halves. On the first, every candidate map of
a head is fitted: for the binary heads (purchase, return) temperature scaling (Guo et al.,
2017), temperature + bias (Platt scaling) and centered isotonic regression (scikit-learn's
fit, each block shipped as one breakpoint at its middle); for the behavior softmax
temperature and temperature + per-class bias. On the second, held-apart half, the
candidate with the lowest expected calibration error wins, "none" (the model's own
probabilities) among them and preferred on a tie, so the chosen map never raises the ECE
on the points it was chosen on. Before and after are that half's reliability, with their
bins, for the report.

The surprise quantiles: the distribution of a window's mean per-event surprise, one of the
measures the anomaly score (`model.anomaly`) ranks a window by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.isotonic import IsotonicRegression

from model.anomaly import TABLE_LEVELS, mean_surprise, quantile_table
from model.calibration import BinaryCalibrator, Calibrators, SoftmaxCalibrator
from model.metrics import Reliability, reliability

HEADS = ("behavior", "purchase", "return")
MIN_T, MAX_T = 0.05, 20.0
MAX_BIAS = 20.0
SPLIT_SEED = 0
MIN_POINTS = 20  # in each half, for a head to be calibrated at all


@dataclass(frozen=True)
class Calibration:
    """The chosen calibrators and, per head, each candidate's ECE on the held-apart half and
    that half's reliability before and after. A head with too few labelled validation points
    keeps the identity and has no entries."""

    calibrators: Calibrators = field(default_factory=Calibrators)
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    before: dict[str, Reliability] = field(default_factory=dict)
    after: dict[str, Reliability] = field(default_factory=dict)

    @property
    def chosen(self) -> dict[str, str]:
        return {head: self.calibrators.head(head).kind for head in HEADS}

    @property
    def ece_before(self) -> dict[str, float]:
        return {head: r.ece for head, r in self.before.items()}

    @property
    def ece_after(self) -> dict[str, float]:
        return {head: r.ece for head, r in self.after.items()}

    def manifest_entry(self) -> dict[str, float]:
        """Flat numbers for `Manifest.calibration`: the held-apart ECEs before and after."""
        out = {f"ece_{h}_before": e for h, e in self.ece_before.items()}
        out.update({f"ece_{h}_after": e for h, e in self.ece_after.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "calibrators": self.calibrators.model_dump(by_alias=True),
            "candidates": {h: dict(c) for h, c in self.candidates.items()},
            "before": {h: r.to_dict() for h, r in self.before.items()},
            "after": {h: r.to_dict() for h, r in self.after.items()},
        }


def _lbfgs(params: list[torch.Tensor], loss_of: Callable[[], torch.Tensor]) -> None:
    opt = torch.optim.LBFGS(params, lr=0.1, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss

    opt.step(closure)


def _nll(scaled: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if scaled.dim() == 1:
        return F.binary_cross_entropy_with_logits(scaled, target.double())
    return F.cross_entropy(scaled, target.long())


def fit_scaling(
    logits: torch.Tensor, labels: torch.Tensor, bias: bool
) -> tuple[float, np.ndarray]:
    """(T, b) minimising the NLL of logits / T + b: logits (N, K) with integer labels for a
    softmax head (b one per class), (N,) with 0/1 labels for a binary head (b a scalar).
    Optimises log T (T stays positive) with L-BFGS; T is clipped to [MIN_T, MAX_T] and b to
    +-MAX_BIAS, so a degenerate validation set cannot produce absurd constants."""
    logits = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(logits.shape[1:], dtype=torch.float64, requires_grad=True)
    params = [log_t, b] if bias else [log_t]
    _lbfgs(params, lambda: _nll(logits / log_t.exp() + b, labels))
    t = float(log_t.detach().exp())
    offset = b.detach().clamp(-MAX_BIAS, MAX_BIAS).numpy()
    if not math.isfinite(t) or not np.isfinite(offset).all():
        return 1.0, np.zeros_like(offset)
    return min(max(t, MIN_T), MAX_T), offset


def _isotonic(p: np.ndarray, y: np.ndarray) -> BinaryCalibrator | None:
    """Centered isotonic regression (Oron & Flournoy, 2017): each block of the isotonic fit
    becomes one point at its middle, so the map rises strictly between blocks instead of
    stepping: answers that the model tells apart (a shopper idle for an hour or a day) stay
    apart after calibration."""
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    x, fy = fitted.X_thresholds_, fitted.y_thresholds_
    block = np.concatenate([[0], np.cumsum(fy[1:] != fy[:-1])])
    lo = np.full(block[-1] + 1, np.inf)
    hi = np.full_like(lo, -np.inf)
    np.minimum.at(lo, block, x)
    np.maximum.at(hi, block, x)
    centre = (lo + hi) / 2
    if len(centre) < 2:
        return None
    level = np.zeros_like(centre)
    level[block] = fy
    return BinaryCalibrator(kind="isotonic", x=centre.tolist(), y=level.tolist())


def binary_candidates(logits: torch.Tensor, labels: torch.Tensor) -> list[BinaryCalibrator]:
    """Every candidate map of a binary head fitted on these points, "none" first."""
    found = [BinaryCalibrator()]
    if len(torch.unique(labels)) < 2:
        return found
    t, _ = fit_scaling(logits, labels, bias=False)
    found.append(BinaryCalibrator(kind="temperature", temperature=t))
    t, b = fit_scaling(logits, labels, bias=True)
    found.append(BinaryCalibrator(kind="platt", temperature=t, bias=float(b)))
    p = torch.sigmoid(logits.double()).numpy()
    isotonic = _isotonic(p, labels.double().numpy())
    if isotonic is not None:
        found.append(isotonic)
    return found


def softmax_candidates(logits: torch.Tensor, labels: torch.Tensor) -> list[SoftmaxCalibrator]:
    """Every candidate map of the behavior softmax fitted on these points, "none" first."""
    t, _ = fit_scaling(logits, labels, bias=False)
    tb, b = fit_scaling(logits, labels, bias=True)
    return [
        SoftmaxCalibrator(),
        SoftmaxCalibrator(kind="temperature", temperature=t),
        SoftmaxCalibrator(kind="temperature_bias", temperature=tb, bias=b.tolist()),
    ]


def network_probabilities(logits: torch.Tensor) -> np.ndarray:
    """What the exported graph answers for these logits: softmax (N, K) or sigmoid (N,)."""
    logits = logits.detach().double()
    if logits.dim() == 1:
        return torch.sigmoid(logits).numpy()
    return torch.softmax(logits, dim=-1).numpy()


def head_reliability(prob: np.ndarray, labels: np.ndarray) -> Reliability:
    """Binary heads: P(y = 1) vs y; the softmax: top-label (max probability vs. correct
    argmax). The report's and the evaluator's convention."""
    if prob.ndim == 1:
        return reliability(prob, labels)
    correct = (prob.argmax(axis=1) == labels).astype(np.float64)
    return reliability(prob.max(axis=1), correct)


def halves(n: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of n points: (fit, choose) index arrays, the second one held apart."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def calibrate(heads: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Calibration:
    """heads: name -> (logits, labels) of the validation points, censored points removed.

    Names are those of HEADS; a head with fewer than MIN_POINTS points in either half keeps
    the identity."""
    chosen: dict[str, Any] = {}
    candidates: dict[str, dict[str, float]] = {}
    before: dict[str, Reliability] = {}
    after: dict[str, Reliability] = {}
    for head, (logits, labels) in heads.items():
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; calibrated heads: {', '.join(HEADS)}")
        fit, choose = halves(len(labels))
        if len(choose) < MIN_POINTS or len(fit) < MIN_POINTS:
            continue
        fit_t = torch.from_numpy(fit)
        fitted: list[Any] = (
            softmax_candidates(logits[fit_t], labels[fit_t]) if head == "behavior"
            else binary_candidates(logits[fit_t], labels[fit_t])
        )
        p = network_probabilities(logits[torch.from_numpy(choose)])
        y = labels.numpy()[choose]
        scored = [(c, head_reliability(c.apply(p), y)) for c in fitted]
        best, best_rel = min(scored, key=lambda s: s[1].ece)  # the first of equals: "none"
        chosen[head] = best
        candidates[head] = {c.kind: r.ece for c, r in scored}
        before[head], after[head] = scored[0][1], best_rel
    return Calibration(
        calibrators=Calibrators.model_validate(chosen),
        candidates=candidates, before=before, after=after,
    )


def surprise_quantiles(surprise: np.ndarray, behavior: np.ndarray) -> list[float]:
    """The table (`model.anomaly.quantile_table`) of the windows' mean per-event surprise.

    surprise (N, T): the exported graph's event_surprise of N windows; behavior (N, T) their
    behavior input (0 at padding). A window's first event has no prediction before it, so
    the mean is over the others, and one-event windows are left out. All zeros when no
    window has two events."""
    means = mean_surprise(surprise, behavior)
    means = means[~np.isnan(means)]
    if len(means) == 0:
        return [0.0] * TABLE_LEVELS
    return quantile_table(means)
