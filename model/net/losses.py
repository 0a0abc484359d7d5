"""The training loss's building blocks: a tied output layer's log-probability of a target
(full or sampled softmax) and the cross-entropies that tolerate an empty batch."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class Negatives(NamedTuple):
    """A sampled softmax's negatives, shared by the batch: vocabulary rows (S,) drawn from a
    proposal q, and log q of each (S,)."""

    rows: Tensor
    log_q: Tensor


def target_logp(
    query: Tensor, table: Tensor, bias: Tensor, target: Tensor, negatives: Negatives | None
) -> Tensor:
    """log p(target) (N,) under a tied output layer (logits = query @ table.T + bias): the
    full softmax when negatives is None, else a sampled softmax that estimates it.

    Sampled: the normaliser Z = sum_j exp(s_j) is estimated by importance sampling from the
    S negatives drawn from q, Z ~ exp(s_target) + sum_neg exp(s_neg) / (S q_neg), with
    accidental hits (a negative equal to the target) left out; the logQ correction keeps it
    an unbiased estimate of the full softmax's gradient in expectation (Bengio & Senecal;
    Yi et al. 2019). The target's own logit is not corrected, so the estimate converges to
    the full softmax's log-probability (not just its gradient): the copy heads mix it with a
    pointer probability, so its value matters, and validation (full softmax) and training
    losses are comparable."""
    if negatives is None:
        logits = torch.addmm(bias, query, table.T)
        return logits.log_softmax(-1).gather(1, target[:, None]).squeeze(1)
    rows = negatives.rows
    # F.embedding rather than table[rows]: its CPU backward sums in a fixed order, so a
    # seeded run is repeatable bit for bit (index backward accumulates in parallel).
    bias2d = bias[:, None]
    pos = (query * F.embedding(target, table)).sum(-1) + F.embedding(target, bias2d).squeeze(1)
    log_expected = negatives.log_q + math.log(len(rows))  # log(S q)
    neg_bias = F.embedding(rows, bias2d).squeeze(1) - log_expected
    neg = torch.addmm(neg_bias, query, F.embedding(rows, table).T)  # (N, S)
    neg = neg.masked_fill(rows[None, :] == target[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)  # (N, 1 + S)
    return logits.log_softmax(-1)[:, 0]


def ce_loss(logits: Tensor, target: Tensor, zero: Tensor) -> Tensor:
    """Cross-entropy, `zero` when there is no target."""
    if target.numel() == 0:
        return zero
    return F.cross_entropy(logits, target)


def bce_loss(logits: Tensor, labels: Tensor, zero: Tensor) -> Tensor:
    """Binary cross-entropy over the known (non-negative) labels, `zero` when none is."""
    known = labels >= 0
    if not bool(known.any()):
        return zero
    return F.binary_cross_entropy_with_logits(logits[known], labels[known].float())
