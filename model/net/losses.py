"""The training loss's building blocks: a tied output layer's log-probability of a target
(full or sampled softmax) and the cross-entropies that tolerate an empty batch."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

# Logits in one block of `full_logsumexp`: 64 MB of float32.
BLOCK_LOGITS = 1 << 24


class Negatives(NamedTuple):
    """A sampled softmax's negatives, shared by the batch: vocabulary rows (S,) drawn from a
    proposal q, and log q of each (S,)."""

    rows: Tensor
    log_q: Tensor


def target_logp(
    query: Tensor, table: Tensor, bias: Tensor, target: Tensor, negatives: Negatives | None
) -> Tensor:
    """log p(target) (N,) under a tied output layer (logits = query @ table.T + bias, with
    table (rows, C) and bias the (rows, 1) column): the full softmax when negatives is None,
    else a sampled softmax that estimates it.

    Both read the table and bias through sparse lookups (`rows_of`), so their gradients
    hold the rows read: the sampled softmax's cost does not grow with the vocabulary, and
    the full one (which reads every row, a block at a time: `full_logsumexp`) trains with
    the same row-wise optimizer.

    Sampled: the normaliser Z = sum_j exp(s_j) is estimated by importance sampling from the
    S negatives drawn from q, Z ~ exp(s_target) + sum_neg exp(s_neg) / (S q_neg), with
    accidental hits (a negative equal to the target) left out; the logQ correction keeps it
    an unbiased estimate of the full softmax's gradient in expectation (Bengio & Senecal;
    Yi et al. 2019). The target's own logit is not corrected, so the estimate converges to
    the full softmax's log-probability (not just its gradient): the copy heads mix it with a
    pointer probability, so its value matters, and validation (full softmax) and training
    losses are comparable."""
    pos = (query * rows_of(table, target)).sum(-1) + rows_of(bias, target).squeeze(1)
    if negatives is None:
        return pos - full_logsumexp(query, table, bias)
    rows = negatives.rows
    log_expected = negatives.log_q + math.log(len(rows))  # log(S q)
    neg_bias = rows_of(bias, rows).squeeze(1) - log_expected
    neg = torch.addmm(neg_bias, query, rows_of(table, rows).T)  # (N, S)
    neg = neg.masked_fill(rows[None, :] == target[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)  # (N, 1 + S)
    return logits.log_softmax(-1)[:, 0]


def full_logsumexp(
    query: Tensor, table: Tensor, bias: Tensor, max_logits: int = BLOCK_LOGITS
) -> Tensor:
    """log sum_j exp(query @ table[j] + bias[j]) (N,) over every row of the table, a block
    of rows at a time so that a block holds at most max_logits logits: without autograd
    (validation), memory then stays bounded however large the catalog."""
    step = max(1, max_logits // max(len(query), 1))
    parts = []
    for lo in range(0, len(table), step):
        block = torch.arange(lo, min(lo + step, len(table)), device=table.device)
        logits = torch.addmm(rows_of(bias, block).squeeze(1), query, rows_of(table, block).T)
        parts.append(logits.logsumexp(-1))
    return torch.stack(parts, dim=-1).logsumexp(-1)


def rows_of(table: Tensor, index: Tensor) -> Tensor:
    """table[index] with a sparse gradient (only the rows read). F.embedding rather than
    indexing also because its CPU backward sums in a fixed order, so a seeded run is
    repeatable bit for bit (index backward accumulates in parallel)."""
    return F.embedding(index, table, sparse=True)


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
