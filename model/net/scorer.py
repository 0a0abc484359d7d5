"""The exported graph: the network, answering for the last position."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.net.network import SeqNet


def item_table(net: SeqNet) -> tuple[Tensor, Tensor]:
    """The item head's tied output layer: the embedding table (rows, d) and the bias (rows,).
    The generator's logit of row x is item_proj(h) . table[x] + bias[x]."""
    return net.item_emb.weight, net.item_bias


def item_vectors(net: SeqNet) -> Tensor:
    """(rows, d + 1) float32: [table[x], bias[x]], what `model.retrieval` searches with the
    graph's `item_query` = [item_proj(h), 1]."""
    table, bias = item_table(net)
    return torch.cat([table, bias[:, None]], dim=1).detach().float().cpu()


class Scorer(nn.Module):
    """The exported graph: SeqNet answering for the last position.

    Outputs: `model.artifact.OUTPUTS` (names in order, axes, meaning), float32. The
    probabilities are the network's own: the manifest's calibrators (`model.calibration`)
    map them to the served ones outside the graph, where a table (isotonic) is a lookup.
    The item head answers with what its retrieval needs, not a score per catalog row: the
    query, the mixture's generator share and the copy weights over the window
    (`model.retrieval.item_candidates` merges them with the item vectors).
    """

    def __init__(self, net: SeqNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, item: Tensor, category: Tensor, behavior: Tensor, gap: Tensor, hour: Tensor,
        weekday: Tensor,
    ) -> tuple[Tensor, ...]:
        net = self.net
        h = net.encode(item, category, behavior, gap, hour, weekday)  # (B, T, C)
        last = h[:, -1]  # (B, C)
        behavior_logp = F.log_softmax(net.behavior_head(h), dim=-1)  # (B, T, 4)
        surprise = event_surprise(behavior_logp, net.next_category_logp(h, item, category),
                                  behavior)
        gate, copy = self._item_mixture(h, item)
        query = net.item_proj(last)  # (B, C)
        return (
            behavior_logp[:, -1].exp(),
            torch.sigmoid(net.purchase_head(last).squeeze(-1)),
            torch.sigmoid(net.return_head(last).squeeze(-1)),
            self._category_scores(h, item, category),
            torch.cat([query, torch.ones_like(query[:, :1])], dim=1),  # (B, C + 1)
            gate,
            copy,
            surprise,
        )

    def _item_mixture(self, h: Tensor, item: Tensor) -> tuple[Tensor, Tensor]:
        """The last position's generator share (B,) and copy weights over the window (B, T)."""
        net = self.net
        if not net.cfg.copy_heads:
            return torch.ones_like(h[:, -1, 0]), torch.zeros_like(h[..., 0])
        pointer = net.item_copy
        attention = pointer.last_attention(h, item != 0, net.from_right(item))  # (B, T)
        return torch.sigmoid(pointer.gate(h[:, -1])).squeeze(-1), attention

    def _category_scores(self, h: Tensor, item: Tensor, category: Tensor) -> Tensor:
        """(B, n_categories) at the last position: generator logits, or with copy heads the
        mixture's log-probabilities (either way a softmax of them is the distribution)."""
        net = self.net
        last = h[:, -1]
        logits = net.category_logits(last)
        if not net.cfg.copy_heads:
            return logits
        pointer = net.category_copy
        attention = pointer.last_attention(h, item != 0, net.from_right(item))
        copied = pointer.copied(attention, category, logits.shape[-1])
        return pointer.mix(logits.softmax(dim=-1), copied, last)


def event_surprise(behavior_logp: Tensor, category_logp: Tensor, behavior: Tensor) -> Tensor:
    """-log p(behavior_t) - log p(category_t) under the prediction made at position t - 1.

    behavior_logp (B, T, 4) log-probabilities; category_logp (B, T-1) the log-probability of
    each next event's category (`SeqNet.next_category_logp`); behavior the (B, T) input.
    0 at padding and at the window's first event.
    """
    nxt_behavior = (behavior[:, 1:] - 1).clamp(min=0)  # (B, T-1) behavior code of event t
    lp_b = behavior_logp[:, :-1].gather(2, nxt_behavior[..., None]).squeeze(-1)  # (B, T-1)
    has_prev = (behavior[:, :-1] > 0) & (behavior[:, 1:] > 0)  # (B, T-1)
    s = torch.where(has_prev, -(lp_b + category_logp), torch.zeros_like(lp_b))
    first = torch.zeros_like(behavior_logp[:, :1, 0])  # (B, 1), also when T == 1
    return torch.cat([first, s], dim=1)  # (B, T)
