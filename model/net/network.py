"""The network: a causal Transformer (or a GRU, for the baseline) over behavior-event tokens.

Read top to bottom: outputs and targets, the network, its heads. The pieces live next to
it: `config`, `attention` (block), `copy_head`, `losses`, and the exported view `scorer`.

A token is the sum of the embeddings of the event's item, category, behavior, gap bucket,
hour and weekday (index 0 of every table is padding; padded tokens are zeroed), plus a learned
position embedding counted from the RIGHT end of the window: windows are left-padded (see
`model.features`), so "the last event" is always position 0 whatever the window length.
With `NetConfig.behavior_stats`, each token also carries a projection of its prefix's
behavior counts: how many views, favs, carts and buys the window holds up to it. Computed
in the graph from the behavior input, so the trainer/service contract does not change.

Every position is a prediction point; the heads read the hidden state of position t and
predict event t + 1 (next behavior, category and item) and the binary outcomes after event t
(purchase and return within the horizon). `forward` returns every head at every position,
the full per-position distributions: the reference that the cheaper paths are tested
against. With targets, `forward` returns the training loss instead (nanoGPT's
`forward(idx, targets)`); it and the exported graph (`Scorer`: calibrated probabilities at
the last position plus the per-event surprise of the whole window) compute from `encode`
only what they need, never a (B, T, vocabulary) mixture. The copy mixture is
`CopyHead.mix` on every path.

`forward` takes tensors and returns tensors, with no Python branching on data, so that
tracing for ONNX export records one graph for every batch size and window length.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from model.features import N_BEHAVIORS
from model.net.attention import Block
from model.net.config import HOURS, WEEKDAYS, NetConfig
from model.net.copy_head import CopyHead
from model.net.losses import Negatives, bce_loss, ce_loss, target_logp


class Logits(NamedTuple):
    """Per-position head outputs of `SeqNet.forward`: the full distributions, the reference
    the training loss and the exported graph are tested against."""

    behavior: Tensor  # (B, T, N_BEHAVIORS) logits
    purchase: Tensor  # (B, T) logits
    returns: Tensor  # (B, T) logits
    category: Tensor  # (B, T, n_categories); log-probabilities of the mixture with copy
    item: Tensor  # (B, T, n_items); likewise


class Targets(NamedTuple):
    """Per-position training targets, (B, T) int64 each: the next event's behavior code,
    category and item rows (-1 where there is no next event), and the purchase and return
    labels (negative where censored or at padding)."""

    behavior: Tensor
    category: Tensor
    item: Tensor
    purchase: Tensor
    returns: Tensor


class SeqNet(nn.Module):
    """Embeddings -> causal encoder -> multi-task heads.

    The category and item output layers are tied to the input embeddings (a projection of the
    hidden state scored against the embedding table, plus a per-row bias): a category or item
    that is easy to recognise is also easy to predict, and rarely seen rows share statistics.
    """

    causal: Tensor

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        # The two large tables (and their output biases below) are read by sparse lookups
        # only, in training: a step's gradient holds the rows it touched, and
        # `configure_optimizers` gives them a row-wise (lazy) Adam, so a step's cost does
        # not grow with the catalog.
        self.item_emb = nn.Embedding(cfg.n_items, d, padding_idx=0, sparse=True)
        self.category_emb = nn.Embedding(cfg.n_categories, d, padding_idx=0, sparse=True)
        self.behavior_emb = nn.Embedding(1 + N_BEHAVIORS, d, padding_idx=0)
        self.gap_emb = nn.Embedding(cfg.n_gaps, d, padding_idx=0)
        self.hour_emb = nn.Embedding(1 + HOURS, d, padding_idx=0)
        self.weekday_emb = nn.Embedding(1 + WEEKDAYS, d, padding_idx=0)
        if cfg.behavior_stats:
            self.stats_proj = nn.Linear(2 * N_BEHAVIORS, d)
        self.drop = nn.Dropout(cfg.dropout)
        # Causal mask built once; the diagonal is always allowed so a padded query
        # (which has only padded keys before it) still has one key and no NaN.
        causal = torch.tril(torch.ones(cfg.window_len, cfg.window_len, dtype=torch.bool))
        self.register_buffer("causal", causal, persistent=False)
        if cfg.encoder == "transformer":
            self.pos_emb = nn.Embedding(cfg.window_len, d)
            self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        else:
            # No bias: with a zero input and a zero state the GRU state stays exactly zero,
            # so the left padding (tokens zeroed in `encode`) leaves the real positions
            # untouched.
            self.gru = nn.GRU(d, d, num_layers=cfg.n_layers, batch_first=True, bias=False)
        self.ln_f = nn.LayerNorm(d)
        self.behavior_head = nn.Linear(d, N_BEHAVIORS)
        self.purchase_head = nn.Linear(d, 1)
        self.return_head = nn.Linear(d, 1)
        self.category_proj = nn.Linear(d, d)
        # One bias per row, a (rows, 1) sparse embedding so that it is read sparsely like the
        # table (and DDP, which looks for sparse embeddings, reduces it as sparse);
        # `category_bias` / `item_bias` are its (rows,) view.
        self.category_bias_rows = nn.Embedding(cfg.n_categories, 1, sparse=True)
        self.item_proj = nn.Linear(d, d)
        self.item_bias_rows = nn.Embedding(cfg.n_items, 1, sparse=True)
        if cfg.copy_heads:
            self.item_copy = CopyHead(d, cfg.window_len)
            self.category_copy = CopyHead(d, cfg.window_len)
        self.apply(self._init_weights)
        # The tied output layers start as "score each row by its similarity to the hidden
        # state", which already contains the current event's embeddings: repeating the
        # current item or category (the strongest signal in shopping logs) is then the
        # starting point instead of something the projection must first discover.
        nn.init.eye_(self.category_proj.weight)
        nn.init.eye_(self.item_proj.weight)
        nn.init.zeros_(self.category_bias_rows.weight)
        nn.init.zeros_(self.item_bias_rows.weight)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    @property
    def item_bias(self) -> Tensor:
        """(n_items,) the item output bias: a view of the `item_bias_rows` column."""
        return self.item_bias_rows.weight[:, 0]

    @property
    def category_bias(self) -> Tensor:
        """(n_categories,) the category output bias: a view of `category_bias_rows`."""
        return self.category_bias_rows.weight[:, 0]

    def row_tables(self) -> list[Tensor]:
        """The parameters with one row per item or category (tables and output biases):
        training reads them by sparse lookups only, so their gradients are sparse."""
        return [self.item_emb.weight, self.item_bias_rows.weight, self.category_emb.weight,
                self.category_bias_rows.weight]

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        """AdamW for the dense parameters, with weight decay on the matrices only (biases
        and norms are not decayed), and a row-wise Adam (`torch.optim.SparseAdam`) for the
        `row_tables`: it updates only the rows a step's gradient touched, and leaves the
        others (whose rare rows would be pulled to zero between their few updates by a
        decay) exactly as they are."""
        rows = {id(p) for p in self.row_tables()}
        dense = [(n, p) for n, p in self.named_parameters() if id(p) not in rows]
        decay = [p for n, p in dense if p.dim() >= 2 and "emb" not in n]
        no_decay = [p for n, p in dense if p.dim() < 2 or "emb" in n]
        betas = (0.9, 0.98)
        return [
            torch.optim.AdamW(
                [{"params": decay, "weight_decay": weight_decay},
                 {"params": no_decay, "weight_decay": 0.0}],
                lr=lr,
                betas=betas,
            ),
            torch.optim.SparseAdam(self.row_tables(), lr=lr, betas=betas),
        ]

    def encode(
        self, item: Tensor, category: Tensor, behavior: Tensor, gap: Tensor, hour: Tensor,
        weekday: Tensor,
    ) -> Tensor:
        """Inputs (B, T) int64, left-padded -> hidden states (B, T, C) after the final norm."""
        x = (
            self.item_emb(item)
            + self.category_emb(category)
            + self.behavior_emb(behavior)
            + self.gap_emb(gap)
            + self.hour_emb(hour)
            + self.weekday_emb(weekday)
        )  # (B, T, C)
        if self.cfg.behavior_stats:
            x = x + self.stats_proj(behavior_stats(behavior))
        # Padded tokens zeroed: the stats projection's bias, and the padding rows of the item
        # and category tables (which the tied output layers train), would make them
        # nonzero. The GRU, which has no mask, then reads the same events whatever the
        # padding.
        x = x * (item != 0).to(x.dtype)[..., None]  # (B, T, C) * (B, T, 1)
        if self.cfg.encoder == "gru":
            h, _ = self.gru(x)
            return self.ln_f(h)
        x = self.drop(x + self.pos_emb(self.from_right(item)))
        mask = self.window_mask(item)[:, None, :, :]  # (B, 1, T, T)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)

    @staticmethod
    def from_right(item: Tensor) -> Tensor:
        """Positions counted from the right end, T-1 .. 0, from tensors only (no Python int
        of T, so the traced graph keeps the time axis dynamic)."""
        return torch.ones_like(item[0]).flip(0).cumsum(0).flip(0) - 1

    def window_mask(self, item: Tensor) -> Tensor:
        """(B, T, T) bool: query t may look at key s (s <= t, s a real event, or s == t)."""
        from_right = self.from_right(item)
        T = item.shape[1]
        causal = self.causal[:T, :T]  # (T, T)
        diagonal = from_right[:, None] == from_right[None, :]  # (T, T)
        real = item != 0  # (B, T); every real event has an item index >= 1
        return causal & (real[:, None, :] | diagonal)

    def forward(
        self, item: Tensor, category: Tensor, behavior: Tensor, gap: Tensor, hour: Tensor,
        weekday: Tensor, targets: Targets | None = None,
        item_negatives: Negatives | None = None, category_negatives: Negatives | None = None,
    ) -> Logits | Tensor:
        """Without targets: every head at every position (`Logits`), the reference the
        cheaper paths are tested against. With targets: the training loss per head
        (len(HEAD_NAMES),), as `losses` computes it."""
        h = self.encode(item, category, behavior, gap, hour, weekday)  # (B, T, C)
        if targets is not None:
            return self.losses(h, item, category, targets, item_negatives, category_negatives)
        outs = []
        for name, logits, window in (("category", self.category_logits(h), category),
                                     ("item", self.item_logits(h), item)):
            if self.cfg.copy_heads:
                pointer = self._pointer(name)
                attention = pointer.attention(h, self.window_mask(item), self.from_right(item))
                copied = pointer.copied(attention, window, logits.shape[-1])
                logits = pointer.mix(logits.softmax(dim=-1), copied, h)
            outs.append(logits)
        return Logits(
            behavior=self.behavior_head(h),
            purchase=self.purchase_head(h).squeeze(-1),
            returns=self.return_head(h).squeeze(-1),
            category=outs[0],
            item=outs[1],
        )

    def losses(
        self, hidden: Tensor, item: Tensor, category: Tensor, targets: Targets,
        item_negatives: Negatives | None, category_negatives: Negatives | None,
    ) -> Tensor:
        """Per-head mean losses (len(HEAD_NAMES),) of the hidden states (B, T, C) of the
        inputs item, category (B, T); their weighted sum is what training minimises.

        Heads are read only at the positions with a target. The item and category heads are
        a full softmax (negatives None) or a sampled softmax over the batch's negatives with
        the logQ correction (`model.net.losses.target_logp`), mixed with the copy head when
        there is one.
        """
        mask = self.window_mask(item) if self.cfg.copy_heads else None
        from_right = self.from_right(item)
        zero = hidden.sum() * 0.0  # keeps the graph connected for empty batches
        labelled = (targets.purchase >= 0) | (targets.returns >= 0)  # (B, T)
        h = hidden[labelled]  # (M, C)
        purchase = bce_loss(self.purchase_head(h).squeeze(-1), targets.purchase[labelled], zero)
        returns = bce_loss(self.return_head(h).squeeze(-1), targets.returns[labelled], zero)
        nxt = targets.behavior >= 0  # (B, T) positions with a next event
        h = hidden[nxt]  # (N, C): the heads run only where there is something to predict
        behavior = ce_loss(self.behavior_head(h), targets.behavior[nxt], zero)
        if not bool(nxt.any()):
            return torch.stack([behavior, purchase, returns, zero, zero])
        heads = []
        for name, window, target, negatives in (
            ("category", category, targets.category, category_negatives),
            ("item", item, targets.item, item_negatives),
        ):
            proj, table, bias = self._output_layer(name)
            logp = target_logp(proj(h), table, bias, target[nxt], negatives)  # (N,)
            if mask is not None:
                pointer = self._pointer(name)
                attention = pointer.attention(hidden, mask, from_right)[nxt]  # (N, T)
                rows = window[:, None, :].expand(-1, window.shape[1], -1)[nxt]  # (N, T)
                logp = pointer.mix_target(logp, attention, rows, target[nxt], h)
            heads.append(-logp.mean())
        return torch.stack([behavior, purchase, returns, heads[0], heads[1]])

    def last_scores(self, hidden: Tensor, item: Tensor, category: Tensor) -> tuple[Tensor, Tensor]:
        """Category and item scores of the last position: (B, n_categories), (B, n_items).
        hidden (B, T, C); item, category the (B, T) inputs (`last_head_scores`)."""
        return (self.last_head_scores("category", hidden, item, category),
                self.last_head_scores("item", hidden, item, item))

    def last_head_scores(self, head: str, hidden: Tensor, item: Tensor, window: Tensor) -> Tensor:
        """The "item" or "category" head's scores of every row at the last position
        (B, rows): generator logits, or with copy heads the mixture's log-probabilities
        (either way a softmax of them is the head's distribution). hidden (B, T, C); item
        the (B, T) item input, window the head's own (B, T) input."""
        last = hidden[:, -1]
        proj, table, bias = self._output_layer(head)
        logits = proj(last) @ table.T + bias[:, 0]
        if not self.cfg.copy_heads:
            return logits
        pointer = self._pointer(head)
        attention = pointer.last_attention(hidden, item != 0, self.from_right(item))
        copied = pointer.copied(attention, window, logits.shape[-1])
        return pointer.mix(logits.softmax(dim=-1), copied, last)

    def last_target_logp(
        self, head: str, hidden: Tensor, item: Tensor, window: Tensor, target: Tensor
    ) -> Tensor:
        """log p(target) (B,) of the "item" or "category" head at the last position, the
        log-softmax of `last_head_scores` at target (B,) rows, without its (B, rows)
        scores: the generator's full softmax over blocks of rows (`target_logp`), mixed
        with the pointer's weight on the target. Arguments as `last_head_scores`."""
        last = hidden[:, -1]
        proj, table, bias = self._output_layer(head)
        logp = target_logp(proj(last), table, bias, target, None)
        if not self.cfg.copy_heads:
            return logp
        pointer = self._pointer(head)
        attention = pointer.last_attention(hidden, item != 0, self.from_right(item))
        return pointer.mix_target(logp, attention, window, target, last)

    def next_category_logp(self, hidden: Tensor, item: Tensor, category: Tensor) -> Tensor:
        """(B, T-1): log p(category of event t + 1) under the prediction at position t, the
        same value as the per-position distribution of `forward` at that category, without
        building it: the generator's log-softmax is gathered at the target and the copy
        part sums the pointer weights of the window positions holding it (as in training).
        hidden (B, T, C); item, category the (B, T) inputs."""
        h = hidden[:, :-1]  # (B, T-1, C)
        target = category[:, 1:]  # (B, T-1)
        logits = self.category_logits(h)  # (B, T-1, K)
        # log_softmax, not logsumexp: ONNX Runtime's ReduceLogSumExp is several times slower.
        logp = logits.log_softmax(-1).gather(-1, target[..., None]).squeeze(-1)
        if not self.cfg.copy_heads:
            return logp
        pointer = self.category_copy
        attention = pointer.attention(hidden, self.window_mask(item), self.from_right(item))
        return pointer.mix_target(logp, attention[:, :-1], category[:, None, :], target, h)

    def _output_layer(self, head: str) -> tuple[nn.Linear, Tensor, Tensor]:
        """The tied output layer of the "item" or "category" head: projection, table
        (rows, C) and bias column (rows, 1)."""
        if head == "item":
            return self.item_proj, self.item_emb.weight, self.item_bias_rows.weight
        return self.category_proj, self.category_emb.weight, self.category_bias_rows.weight

    def _pointer(self, head: str) -> CopyHead:
        return self.item_copy if head == "item" else self.category_copy

    def category_logits(self, h: Tensor) -> Tensor:
        """(..., C) -> (..., n_categories), scored against the tied category embeddings."""
        return self.category_proj(h) @ self.category_emb.weight.T + self.category_bias

    def item_logits(self, h: Tensor) -> Tensor:
        """(..., C) -> (..., n_items), scored against the tied item embeddings."""
        return self.item_proj(h) @ self.item_emb.weight.T + self.item_bias


def behavior_stats(behavior: Tensor) -> Tensor:
    """(B, T) behavior input -> (B, T, 8): at each position, log(1 + count) and share of each
    behavior among the window's events up to and including it (zero at the left padding).

    What the recency/frequency trees lean on (a shopper who favs or carts a lot keeps doing
    it): the network does not learn these counts from the behavior tokens alone
    (docs/model.md compares the two)."""
    codes = torch.arange(1, N_BEHAVIORS + 1, device=behavior.device)
    counts = (behavior[..., None] == codes).float().cumsum(1)  # (B, T, N_BEHAVIORS)
    shares = counts / counts.sum(-1, keepdim=True).clamp(min=1.0)
    return torch.cat([torch.log1p(counts), shares], dim=-1)


def n_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
