"""The copy (pointer) head and its mixture with a softmax over the vocabulary."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# The smallest probability a mixture reports (log -69): far below any real candidate's, and
# clear of float32's denormals, so log() and its gradient stay finite.
LOG_FLOOR = 1e-30


class CopyHead(nn.Module):
    """A pointer over the window (pointer-generator / RepeatNet style): from a query position
    it attends over the window's real positions up to itself, and a learned gate mixes that
    copy distribution with the head's softmax over the vocabulary:

        p(x) = g * softmax(logits)(x) + (1 - g) * sum_s attention(s) * [x_s == x]

    In shopping logs most next categories and a quarter of next items were already in the
    window; a copy puts probability on exactly those, whatever their popularity.
    """

    def __init__(self, d_model: int, window_len: int) -> None:
        super().__init__()
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.gate = nn.Linear(d_model, 1)
        # A learned score per distance (events back from the query): recency, which the
        # "repeat the most recent" baseline shows to be the strongest single copy signal.
        # It starts at -log(1 + distance): most recent first, as that baseline ranks.
        self.recency = nn.Parameter(-torch.log1p(torch.arange(window_len, dtype=torch.float)))
        self.scale = d_model**-0.5

    def attention(self, hidden: Tensor, mask: Tensor, from_right: Tensor) -> Tensor:
        """hidden (B, T, C), mask (B, T, T), from_right (T,) positions counted from the
        right end -> copy weights (B, T, T); rows sum to 1."""
        scores = (self.query(hidden) @ self.key(hidden).transpose(1, 2)) * self.scale
        distance = (from_right[None, :] - from_right[:, None]).clamp(min=0)  # (T, T) t - s
        scores = scores + self.recency[distance]
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)

    def last_attention(self, hidden: Tensor, real: Tensor, from_right: Tensor) -> Tensor:
        """The last position's copy weights (B, T) over the real positions (B, T)."""
        q = self.query(hidden[:, -1])  # (B, C)
        scores = (self.key(hidden) @ q[:, :, None]).squeeze(-1) * self.scale  # (B, T)
        scores = scores + self.recency[from_right]
        return scores.masked_fill(~real, float("-inf")).softmax(dim=-1)

    @staticmethod
    def copied(attention: Tensor, index: Tensor, size: int) -> Tensor:
        """The copy distribution over `size` vocabulary rows (..., size): the attention
        (..., T) of each window position added to its row; index (B, T) the window's rows."""
        if attention.dim() == 3:  # every position: (B, T, T) over the same window
            index = index[:, None, :].expand_as(attention)
        zeros = attention.new_zeros(*attention.shape[:-1], size)
        return zeros.scatter_add(-1, index, attention)

    def mix_target(self, generator_logp: Tensor, attention: Tensor, window: Tensor,
                   target: Tensor, hidden: Tensor) -> Tensor:
        """log p(target) of the mixture for one target per query, without a distribution
        over the vocabulary: the generator's log-probability of it (...,), plus the pointer
        weights attention (..., T) of the window positions whose row window (..., T) equals
        target (...,); hidden (..., C) the query states."""
        p_copy = (attention * (window == target[..., None])).sum(-1)
        return self.mix(generator_logp.exp()[..., None], p_copy[..., None], hidden)[..., 0]

    def mix(self, generator: Tensor, copied: Tensor, hidden: Tensor) -> Tensor:
        """log p(x) of the mixture, the one place it is computed. generator and copied
        (..., K) are the softmax's and the pointer's probabilities of the same K outcomes
        (a whole vocabulary, or one target each with K = 1); hidden (..., C) the query
        positions' states, which the gate reads. Floored at LOG_FLOOR."""
        g = torch.sigmoid(self.gate(hidden))  # (..., 1)
        p = g * generator + (1.0 - g) * copied
        return torch.log(p.clamp_min(LOG_FLOOR))
