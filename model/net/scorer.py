"""The exported graph: the network plus calibration, answering for the last position."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.net.network import SeqNet


class Scorer(nn.Module):
    """The exported graph: SeqNet plus calibration, answering for the last position.

    Outputs: `model.artifact.OUTPUTS` (names in order, axes, meaning), float32.
    Temperatures (fitted by `model.calibrate`) divide the behavior,
    purchase and return logits; the surprise uses the calibrated behavior distribution.
    """

    def __init__(self, net: SeqNet, temperatures: dict[str, float]) -> None:
        super().__init__()
        self.net = net
        for head in ("behavior", "purchase", "return"):
            self.register_buffer(f"t_{head}", torch.tensor(float(temperatures.get(head, 1.0))))

    def forward(
        self, item: Tensor, category: Tensor, behavior: Tensor, gap: Tensor, hour: Tensor,
        weekday: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        net = self.net
        h = net.encode(item, category, behavior, gap, hour, weekday)  # (B, T, C)
        last = h[:, -1]  # (B, C)
        category_last, item_last = net.last_scores(h, item, category)
        behavior_logp = F.log_softmax(net.behavior_head(h) / self.t_behavior, dim=-1)  # (B, T, 4)
        surprise = event_surprise(behavior_logp, net.next_category_logp(h, item, category),
                                  behavior)
        return (
            behavior_logp[:, -1].exp(),
            torch.sigmoid(net.purchase_head(last).squeeze(-1) / self.t_purchase),
            torch.sigmoid(net.return_head(last).squeeze(-1) / self.t_return),
            category_last,
            item_last,
            surprise,
        )


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
