"""The network: a causal Transformer (or a GRU, for the baseline) over behavior-event tokens.

Read top to bottom: config, attention, block, the network, its heads, the exported view.

A token is the sum of the embeddings of the event's item, category, behavior, gap bucket,
hour and weekday (index 0 of every table is padding and embeds to zero), plus a learned
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

import math
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor, nn

from model.features import Behavior

N_BEHAVIORS = len(Behavior)
HOURS = 24
WEEKDAYS = 7
# The order of the per-head losses `SeqNet.forward` returns with targets.
HEAD_NAMES = ("behavior", "purchase", "return", "category", "item")


class Architecture(BaseModel):
    """What a network's weights were trained for: a warm start takes these from the
    checkpoint, and `model.train.TrainConfig` shares them with `NetConfig` by inheritance.
    `copy_heads` is "copy" in JSON and overrides (pydantic's BaseModel owns `.copy`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    window_len: int = Field(default=50, ge=2)
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    encoder: Literal["transformer", "gru"] = "transformer"
    # pointer heads: item and category mixtures with a copy of the window (CopyHead)
    copy_heads: bool = Field(default=False, alias="copy")
    behavior_stats: bool = False  # each token also embeds its prefix's behavior counts

    @model_validator(mode="after")
    def _heads_divide_width(self) -> Any:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        return self

    def architecture(self) -> dict[str, Any]:
        """The Architecture fields of this config, by attribute name."""
        return self.model_dump(include=set(Architecture.model_fields))


class NetConfig(Architecture):
    """Shape of the network. Vocabulary sizes are embedding rows (padding, missing, known,
    out-of-vocabulary buckets; see `model.features.Vocab.size`)."""

    n_items: int
    n_categories: int
    n_gaps: int
    dropout: float = 0.1


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.d_model = cfg.d_model
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, C); mask (B, 1, T, T) bool, True where query t may attend to key s."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.d_model, dim=2)  # C as a constant, for tracing
        q = q.view(B, T, self.n_heads, -1).transpose(1, 2)  # (B, H, T, Ch)
        k = k.view(B, T, self.n_heads, -1).transpose(1, 2)
        v = v.view(B, T, self.n_heads, -1).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, Ch)
        y = y.transpose(1, 2).reshape(B, T, C)
        return F.dropout(self.proj(y), p, self.training)


class Block(nn.Module):
    """Pre-norm Transformer block (as in GPT-2 / nanoGPT)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


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

    def mix(self, generator: Tensor, copied: Tensor, hidden: Tensor) -> Tensor:
        """log p(x) of the mixture, the one place it is computed. generator and copied
        (..., K) are the softmax's and the pointer's probabilities of the same K outcomes
        (a whole vocabulary, or one target each with K = 1); hidden (..., C) the query
        positions' states, which the gate reads. Floored at LOG_FLOOR."""
        g = torch.sigmoid(self.gate(hidden))  # (..., 1)
        p = g * generator + (1.0 - g) * copied
        return torch.log(p.clamp_min(LOG_FLOOR))


# The smallest probability a mixture reports (log -69): far below any real candidate's, and
# clear of float32's denormals, so log() and its gradient stay finite.
LOG_FLOOR = 1e-30


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


class Negatives(NamedTuple):
    """A sampled softmax's negatives, shared by the batch: vocabulary rows (S,) drawn from a
    proposal q, and log q of each (S,)."""

    rows: Tensor
    log_q: Tensor


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
        self.item_emb = nn.Embedding(cfg.n_items, d, padding_idx=0)
        self.category_emb = nn.Embedding(cfg.n_categories, d, padding_idx=0)
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
        self.category_bias = nn.Parameter(torch.zeros(cfg.n_categories))
        self.item_proj = nn.Linear(d, d)
        self.item_bias = nn.Parameter(torch.zeros(cfg.n_items))
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

    def configure_optimizers(self, lr: float, weight_decay: float) -> torch.optim.AdamW:
        """AdamW with weight decay on the matrices only: biases, norms and embedding tables
        (whose rare rows would be pulled to zero between their few updates) are not decayed."""
        named = list(self.named_parameters())
        decay = [p for n, p in named if p.dim() >= 2 and "emb" not in n]
        no_decay = [p for n, p in named if p.dim() < 2 or "emb" in n]
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=lr,
            betas=(0.9, 0.98),
        )

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
        # Padded tokens zeroed (the stats projection's bias would make them nonzero): the
        # GRU, which has no mask, then reads the same real events whatever the padding.
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
        the logQ correction (`_target_logp`), mixed with the copy head when there is one.
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
            logp = _target_logp(proj(h), table, bias, target[nxt], negatives)  # (N,)
            if mask is not None:
                pointer = self._pointer(name)
                attention = pointer.attention(hidden, mask, from_right)[nxt]  # (N, T)
                match = (window[:, None, :] == target[:, :, None])[nxt]  # (N, T)
                p_copy = (attention * match).sum(-1)  # (N,)
                logp = pointer.mix(logp.exp()[:, None], p_copy[:, None], h)[:, 0]
            heads.append(-logp.mean())
        return torch.stack([behavior, purchase, returns, heads[0], heads[1]])

    def last_scores(self, hidden: Tensor, item: Tensor, category: Tensor) -> tuple[Tensor, Tensor]:
        """Category and item scores of the last position: (B, n_categories), (B, n_items).
        Generator logits, or with copy heads the mixture's log-probabilities (either way
        a softmax of them is the head's distribution). hidden (B, T, C); item, category the
        (B, T) inputs."""
        last = hidden[:, -1]
        category_out = self.category_logits(last)
        item_out = self.item_logits(last)
        if self.cfg.copy_heads:
            real, from_right = item != 0, self.from_right(item)
            outs = []
            for name, logits, window in (("category", category_out, category),
                                         ("item", item_out, item)):
                pointer = self._pointer(name)
                attention = pointer.last_attention(hidden, real, from_right)
                copied = pointer.copied(attention, window, logits.shape[-1])
                outs.append(pointer.mix(logits.softmax(dim=-1), copied, last))
            category_out, item_out = outs
        return category_out, item_out

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
        match = category[:, None, :] == target[:, :, None]  # (B, T-1, T)
        p_copy = (attention[:, :-1] * match).sum(-1)  # (B, T-1)
        return pointer.mix(logp.exp()[..., None], p_copy[..., None], h)[..., 0]

    def _output_layer(self, head: str) -> tuple[nn.Linear, Tensor, Tensor]:
        """The tied output layer of the "item" or "category" head: projection, table, bias."""
        if head == "item":
            return self.item_proj, self.item_emb.weight, self.item_bias
        return self.category_proj, self.category_emb.weight, self.category_bias

    def _pointer(self, head: str) -> CopyHead:
        return self.item_copy if head == "item" else self.category_copy

    def category_logits(self, h: Tensor) -> Tensor:
        """(..., C) -> (..., n_categories), scored against the tied category embeddings."""
        return self.category_proj(h) @ self.category_emb.weight.T + self.category_bias

    def item_logits(self, h: Tensor) -> Tensor:
        """(..., C) -> (..., n_items), scored against the tied item embeddings."""
        return self.item_proj(h) @ self.item_emb.weight.T + self.item_bias


def _target_logp(
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


class Scorer(nn.Module):
    """The exported graph: SeqNet plus calibration, answering for the last position.

    Outputs, in `model.artifact.OUTPUT_NAMES` order: behavior_probs (B, 4), purchase_prob (B,),
    return_prob (B,), category_logits (B, n_categories), item_logits (B, n_items),
    event_surprise (B, T). Temperatures (fitted by `model.calibrate`) divide the behavior,
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


def n_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
