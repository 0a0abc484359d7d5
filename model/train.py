"""Training: an EventLog and a time split in, a calibrated TrainedModel out.

Training data are the events before split.val_cutoff, cut per user into windows of window_len
events counted back from the user's last training event (the first window of a user is the
short, left-padded one). Every position of a window is a prediction point: its next-event
targets are the user's following event (for a window's last position that is the first
event of the next window), its purchase and return labels those of `model.sequences`,
censored at the validation cutoff and left out of the loss where censored.

Early stopping and calibration use `model.sequences.validation_points`, scored like the
service scores them: the last position of each window. Every window is featurized by
`model.features.featurize_indexed`, the code the service path shares.

Runs on CPU by default, on CUDA when present (device="auto"), and with `torchrun` as PyTorch
DDP when WORLD_SIZE > 1 (each rank trains on its DistributedSampler share; all ranks score the
same validation set, so early stopping agrees without communication; rank 0 logs).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

from model.artifact import Priors
from model.calibrate import Calibration, calibrate
from model.features import INPUT_NAMES, Features, FeatureSpec, Vocab, featurize_indexed
from model.net import LOG_FLOOR, NetConfig, Scorer, SeqNet, n_parameters
from model.sequences import (
    CENSORED,
    EventLog,
    TimeSplit,
    purchase_labels,
    return_labels,
    validation_points,
)

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
HEAD_NAMES = ("behavior", "purchase", "return", "category", "item")
TOP_PRIORS = 20
EVAL_BATCH = 512
SURPRISE_BATCH = 64  # the surprise needs (B, T, n_categories) logits


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. `TrainConfig.preset(name, **overrides)`."""

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.1
    window_len: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    max_epochs: int = 20
    patience: int = 3
    seed: int = 0
    # Items seen fewer times before the test cutoff share hashed OOV buckets. 1: an item the
    # model cannot name can neither be predicted nor copied from the window (Taobao: 2 ->
    # 1 doubles the coverage of test targets, item Recall@20 0.064 -> 0.104).
    min_item_count: int = 1
    min_category_count: int = 1
    n_oov_items: int = 1024
    n_oov_categories: int = 64
    horizon_seconds: int = 86400
    return_gap_seconds: int = 1800
    encoder: str = "transformer"  # "transformer" | "gru"
    copy: bool = True  # pointer heads for item and category (model.net.CopyHead)
    behavior_stats: bool = True  # prefix behavior counts in every token (model.net)
    # Loss weights of the heads, in the training loss and the early-stopping criterion. The
    # small heads' losses are a few tenths of a nat against the ranking heads' 4-10, so
    # unweighted the shared encoder and the early stopping serve the ranking heads alone.
    behavior_weight: float = 5.0
    purchase_weight: float = 3.0
    return_weight: float = 1.0
    category_weight: float = 1.0
    item_weight: float = 1.0
    item_loss: str = "sampled"  # "sampled" (log-Q corrected sampled softmax) | "full"
    n_negatives: int = 1024  # negatives shared by a batch, sampled item softmax
    category_loss: str = "sampled"  # "sampled" | "full" (docs/model.md: speed vs quality)
    n_category_negatives: int = 256
    device: str = "auto"  # "auto" (CUDA when present) | "cpu" | "cuda" | "cuda:N"
    # Early stopping, calibration and the surprise quantiles use a seeded sample of this
    # many validation points (each a full-window forward: on Taobao all 17,456 cost ~10x an
    # epoch's training, per epoch).
    max_val_points: int = 4096

    def __post_init__(self) -> None:
        for name in ("item_loss", "category_loss"):
            if getattr(self, name) not in ("sampled", "full"):
                raise ValueError(f"{name} must be 'sampled' or 'full', not {getattr(self, name)!r}")
        if self.encoder not in ("transformer", "gru"):
            raise ValueError(f"encoder must be 'transformer' or 'gru', not {self.encoder!r}")
        if self.window_len < 2:
            raise ValueError("window_len must be at least 2")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; fields: {sorted(known)}")
        return replace(PRESETS[name], **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def head_weights(self) -> list[float]:
        """Loss weight of each head, in HEAD_NAMES order."""
        return [self.behavior_weight, self.purchase_weight, self.return_weight,
                self.category_weight, self.item_weight]


PRESETS: dict[str, TrainConfig] = {
    # Seconds on a laptop core: tests, the demo artifact, smoke runs.
    "tiny": TrainConfig(
        d_model=32,
        n_layers=1,
        n_heads=2,
        window_len=20,
        batch_size=32,
        lr=5e-3,
        warmup_steps=10,
        max_epochs=8,
        patience=2,
        n_oov_items=64,
        n_oov_categories=16,
        n_negatives=256,
        category_loss="full",
    ),
    "default": TrainConfig(),
}


@dataclass
class TrainedModel:
    """A trained network with everything needed to export, score or continue training it."""

    net: SeqNet
    spec: FeatureSpec
    items: Vocab
    categories: Vocab
    cfg: TrainConfig
    history: list[dict[str, Any]]
    calibration: Calibration
    priors: Priors
    surprise_quantiles: list[float]
    stats: dict[str, Any] = field(default_factory=dict)

    def scorer(self) -> Scorer:
        """The exported view (calibrated outputs), on CPU in eval mode."""
        return Scorer(copy.deepcopy(self.net).cpu(), self.calibration.temperatures).eval()

    def predict(self, features: Features, batch_size: int = EVAL_BATCH) -> dict[str, np.ndarray]:
        """The outputs of `model.runtime.OnnxModel.run`, computed by PyTorch on CPU."""
        from model.artifact import OUTPUT_NAMES

        scorer = self.scorer()
        n = len(features["item"])
        parts: list[tuple[Tensor, ...]] = []
        with torch.no_grad():
            for lo in range(0, n, batch_size):
                batch = [torch.from_numpy(features[k][lo : lo + batch_size]) for k in INPUT_NAMES]
                parts.append(scorer(*batch))
        return {
            name: torch.cat([p[i] for p in parts]).numpy() for i, name in enumerate(OUTPUT_NAMES)
        }

    def save_checkpoint(self, path: Path) -> None:
        """A checkpoint that describes itself: configs, vocabularies and weights."""
        torch.save(
            {
                "train_config": self.cfg.to_dict(),
                "net_config": self.net.cfg.to_dict(),
                "features": self.spec.to_dict(),
                "items": self.items.ids,
                "categories": self.categories.ids,
                "temperatures": self.calibration.temperatures,
                "state_dict": {k: v.cpu() for k, v in self.net.state_dict().items()},
            },
            path,
        )


# ---------------------------------------------------------------------------------------
# Vocabularies and the indexed log


def build_vocab(
    raw_ids: np.ndarray, codes: np.ndarray, min_count: int, n_oov: int, keep: list[str]
) -> Vocab:
    """Ids kept from an earlier model first (same indices), then ids seen at least min_count
    times in `codes`, most frequent first. Everything else falls into hashed OOV buckets."""
    counts = np.bincount(codes, minlength=len(raw_ids))
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= min_count]
    kept = set(keep)
    new = [str(raw_ids[c]) for c in order if str(raw_ids[c]) not in kept and str(raw_ids[c])]
    return Vocab(list(keep) + new, n_oov)


def index_table(raw_ids: np.ndarray, vocab: Vocab) -> np.ndarray:
    """code -> vocabulary index for every raw id of a log's id table."""
    return vocab.lookup(str(r) for r in raw_ids)


@dataclass(frozen=True)
class Indexed:
    """The flat event arrays featurize_indexed reads, with targets and labels per event."""

    item: np.ndarray
    category: np.ndarray
    behavior: np.ndarray
    ts: np.ndarray
    has_next: np.ndarray  # the next event belongs to the same user
    purchase: np.ndarray
    returns: np.ndarray

    @classmethod
    def of(
        cls, events: EventLog, items: np.ndarray, categories: np.ndarray, cfg: TrainConfig,
        known_until: int,
    ) -> Indexed:
        same_user = np.zeros(len(events), dtype=bool)
        same_user[:-1] = events.user[1:] == events.user[:-1]
        h, g = cfg.horizon_seconds, cfg.return_gap_seconds
        return cls(
            item=items[events.item],
            category=categories[events.category],
            behavior=events.behavior.astype(np.int64),
            ts=events.ts,
            has_next=same_user,
            purchase=purchase_labels(events, h, known_until).astype(np.int64),
            returns=return_labels(events, h, g, known_until).astype(np.int64),
        )

    def batch(
        self, starts: np.ndarray, lengths: np.ndarray, spec: FeatureSpec, width: int
    ) -> tuple[Features, np.ndarray]:
        """Features of windows events[start : start + length], left-padded to width, and the
        (B, width) flat index of the event at each position (-1 at padding).

        Only the batch's events are handed to featurize_indexed (rebased), so a batch costs
        O(batch) however long the log is."""
        src = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)])
        local_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        feats = featurize_indexed(
            self.item[src], self.category[src], self.behavior[src], self.ts[src],
            local_starts, lengths, spec, width,
        )
        col = np.arange(width)
        offset = col[None, :] - (width - lengths[:, None])  # (B, W)
        where = np.where(offset >= 0, starts[:, None] + offset, -1)
        return feats, where


def training_windows(events: EventLog, window_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of each user's events cut into windows, counted back from the end."""
    u_start, u_end = events.user_bounds()
    n = u_end - u_start
    n_windows = -(-n // window_len)  # ceil
    user = np.repeat(np.arange(len(n)), n_windows)
    k_back = np.arange(n_windows.sum()) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    end = u_end[user] - k_back * window_len
    start = np.maximum(end - window_len, u_start[user])
    return start.astype(np.int64), (end - start).astype(np.int64)


def length_batches(
    order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
    group: int = 16,
) -> list[np.ndarray]:
    """Batches of window indices in `order`, grouped by similar length: every `group`
    batches' worth of windows is sorted by length, cut into batches, and the batches are
    shuffled. Short windows then share batches and padding (computed for nothing) shrinks."""
    batches: list[np.ndarray] = []
    span = batch_size * group
    for lo in range(0, len(order), span):
        chunk = order[lo : lo + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _targets(data: Indexed, where: np.ndarray) -> dict[str, np.ndarray]:
    """Per-position targets: next event's behavior/category/item (-1 where none), labels."""
    safe = np.maximum(where, 0)
    ok = (where >= 0) & data.has_next[safe]
    nxt = np.minimum(safe + 1, len(data.ts) - 1)
    return {
        "behavior": np.where(ok, data.behavior[nxt], -1),
        "category": np.where(ok, data.category[nxt], -1),
        "item": np.where(ok, data.item[nxt], -1),
        "purchase": np.where(where >= 0, data.purchase[safe], CENSORED),
        "return": np.where(where >= 0, data.returns[safe], CENSORED),
    }


# ---------------------------------------------------------------------------------------
# The loss


class TrainStep(nn.Module):
    """Network + multi-task loss in one module, so DDP sees every parameter in forward.

    Heads are read at every position with a target. The item head is a full softmax or a
    sampled softmax over `negatives` shared by the batch, drawn from the training item
    distribution q, with the logQ correction (logit - log q) that keeps it an unbiased
    estimate of the full softmax's gradient in expectation (Bengio & Senecal; Yi et al. 2019).
    """

    def __init__(self, net: SeqNet, item_log_q: Tensor, category_log_q: Tensor) -> None:
        super().__init__()
        self.net = net
        self.item_log_q: Tensor
        self.category_log_q: Tensor
        self.register_buffer("item_log_q", item_log_q)
        self.register_buffer("category_log_q", category_log_q)

    def forward(
        self,
        inputs: list[Tensor],
        targets: dict[str, Tensor],
        item_negatives: Tensor | None,
        category_negatives: Tensor | None,
    ) -> Tensor:
        """Returns the per-head mean losses (len(HEAD_NAMES),); their sum is minimised."""
        net = self.net
        hidden = net.encode(*inputs)  # (B, T, C)
        mask = net.window_mask(inputs[0]) if net.cfg.copy else None
        from_right = net.from_right(inputs[0])
        zero = hidden.sum() * 0.0  # keeps the graph connected for empty batches
        labelled = (targets["purchase"] >= 0) | (targets["return"] >= 0)  # (B, T)
        h = hidden[labelled]  # (M, C)
        losses = [
            _masked_bce(net.purchase_head(h).squeeze(-1), targets["purchase"][labelled], zero),
            _masked_bce(net.return_head(h).squeeze(-1), targets["return"][labelled], zero),
        ]
        nxt = targets["behavior"] >= 0  # (B, T) positions with a next event
        h = hidden[nxt]  # (N, C): the heads run only where there is something to predict
        behavior = _masked_ce(net.behavior_head(h), targets["behavior"][nxt], zero)
        if not bool(nxt.any()):
            return torch.stack([behavior, losses[0], losses[1], zero, zero])
        heads = []
        for name, proj, table, bias, negatives, log_q, index, pointer in (
            ("category", net.category_proj, net.category_emb.weight, net.category_bias,
             category_negatives, self.category_log_q, inputs[1],
             net.category_copy if net.cfg.copy else None),
            ("item", net.item_proj, net.item_emb.weight, net.item_bias,
             item_negatives, self.item_log_q, inputs[0],
             net.item_copy if net.cfg.copy else None),
        ):
            target = targets[name]  # (B, T)
            logp = _softmax_logp(proj(h), table, bias, target[nxt], negatives, log_q)
            if pointer is not None and mask is not None:
                attention = pointer.attention(hidden, mask, from_right)[nxt]  # (N, T)
                match = (index[:, None, :] == target[:, :, None])[nxt]  # (N, T)
                p_copy = (attention * match).sum(-1).clamp_min(LOG_FLOOR)
                gate = pointer.gate(h).squeeze(-1)
                logp = torch.logaddexp(
                    F.logsigmoid(gate) + logp, F.logsigmoid(-gate) + p_copy.log()
                )
            heads.append(-logp.mean())
        return torch.stack([behavior, losses[0], losses[1], heads[0], heads[1]])


def _softmax_logp(
    query: Tensor, table: Tensor, bias: Tensor, target: Tensor, negatives: Tensor | None,
    log_q: Tensor,
) -> Tensor:
    """log p(target) (N,) under a tied output layer (logits = query @ table.T + bias): the
    full softmax when negatives is None, else a sampled softmax that estimates it.

    Sampled: the normaliser Z = sum_j exp(s_j) is estimated by importance sampling from the
    S negatives drawn from q, Z ~ exp(s_target) + sum_neg exp(s_neg) / (S q_neg), with
    accidental hits (a negative equal to the target) left out. The target's own logit is
    not corrected, so the estimate converges to the full softmax's log-probability (not
    just its gradient): the copy heads mix it with a pointer probability, so its value
    matters, and validation (full softmax) and training losses are comparable."""
    if negatives is None:
        logits = torch.addmm(bias, query, table.T)
        return logits.log_softmax(-1).gather(1, target[:, None]).squeeze(1)
    # F.embedding rather than table[rows]: its CPU backward sums in a fixed order, so a
    # seeded run is repeatable bit for bit (index backward accumulates in parallel).
    bias2d = bias[:, None]
    pos = (query * F.embedding(target, table)).sum(-1) + F.embedding(target, bias2d).squeeze(1)
    log_expected = log_q[negatives] + math.log(len(negatives))  # log(S q)
    neg_bias = F.embedding(negatives, bias2d).squeeze(1) - log_expected
    neg = torch.addmm(neg_bias, query, F.embedding(negatives, table).T)  # (N, S)
    neg = neg.masked_fill(negatives[None, :] == target[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)  # (N, 1 + S)
    return logits.log_softmax(-1)[:, 0]


def _masked_ce(logits: Tensor, target: Tensor, zero: Tensor) -> Tensor:
    if target.numel() == 0:
        return zero
    return F.cross_entropy(logits, target)


def _masked_bce(logits: Tensor, labels: Tensor, zero: Tensor) -> Tensor:
    known = labels >= 0
    if not bool(known.any()):
        return zero
    return F.binary_cross_entropy_with_logits(logits[known], labels[known].float())


# ---------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True)
class Validation:
    """Featurized validation points and their targets (last position of each window)."""

    features: Features
    targets: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.features["item"])


def _validation(
    events: EventLog, split: TimeSplit, cfg: TrainConfig, spec: FeatureSpec,
    items: np.ndarray, categories: np.ndarray,
) -> tuple[Validation, int]:
    """The featurized sample of `cfg.max_val_points` validation points, and how many there
    were in all."""
    before_test, every = validation_points(
        events, split, cfg.window_len, cfg.horizon_seconds, cfg.return_gap_seconds
    )
    points = every.sample(cfg.max_val_points, cfg.seed)
    data = Indexed.of(before_test, items, categories, cfg, split.test_cutoff - 1)
    feats, _ = data.batch(points.start, points.length, spec, cfg.window_len)
    t = points.target
    return Validation(
        features=feats,
        targets={
            "behavior": data.behavior[t],
            "category": data.category[t],
            "item": data.item[t],
            "purchase": points.purchase.astype(np.int64),
            "return": points.returns.astype(np.int64),
        },
    ), len(every)


@torch.no_grad()
def _last_position_logits(
    net: SeqNet, features: Features, device: torch.device, item_target: np.ndarray | None = None
) -> dict[str, Tensor]:
    """Head outputs at the last position of each window (CPU tensors): behavior, purchase
    and return logits, category scores, and with item_target (-1: none) the item head's
    log-probability of it ("item_logp", 0 where there is no target). Heads run on the last
    position only, and the (points x items) item scores are never kept whole."""
    was_training = net.training
    net.eval()
    names = ("behavior", "purchase", "return", "category", "item_logp")
    parts: dict[str, list[Tensor]] = {k: [] for k in names}
    n = len(features["item"])
    for lo in range(0, n, EVAL_BATCH):
        x = [torch.from_numpy(features[k][lo : lo + EVAL_BATCH]).to(device) for k in INPUT_NAMES]
        hidden = net.encode(*x)
        h = hidden[:, -1]  # (B, C)
        category, item = net.last_scores(hidden, x[0], x[1])
        parts["behavior"].append(net.behavior_head(h).cpu())
        parts["purchase"].append(net.purchase_head(h).squeeze(-1).cpu())
        parts["return"].append(net.return_head(h).squeeze(-1).cpu())
        parts["category"].append(category.cpu())
        if item_target is not None:
            t = torch.from_numpy(item_target[lo : lo + EVAL_BATCH]).to(device)
            logp = item.log_softmax(-1).gather(1, t.clamp(min=0)[:, None]).squeeze(1)
            parts["item_logp"].append(torch.where(t >= 0, logp, torch.zeros_like(logp)).cpu())
    net.train(was_training)
    return {k: torch.cat(v) if v else torch.zeros(0) for k, v in parts.items()}


@torch.no_grad()
def _validation_losses(net: SeqNet, val: Validation, device: torch.device) -> dict[str, float]:
    """Mean loss per head at the last position of the validation windows (full softmax)."""
    if len(val) == 0:
        return {head: float("nan") for head in HEAD_NAMES}
    out = _last_position_logits(net, val.features, device, val.targets["item"])
    t = {k: torch.from_numpy(v) for k, v in val.targets.items()}
    zero = torch.zeros(())
    has_item = t["item"] >= 0
    losses = {
        "behavior": _masked_ce(out["behavior"], t["behavior"], zero),
        "purchase": _masked_bce(out["purchase"], t["purchase"], zero),
        "return": _masked_bce(out["return"], t["return"], zero),
        "category": _masked_ce(out["category"], t["category"], zero),
        "item": -out["item_logp"][has_item].mean() if bool(has_item.any()) else zero,
    }
    return {k: float(v) for k, v in losses.items()}


# ---------------------------------------------------------------------------------------
# fit


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)


def _priors(data: Indexed, events: EventLog, items: Vocab, categories: Vocab) -> Priors:
    behavior = np.bincount(data.behavior, minlength=4)[:4].astype(np.float64)
    purchase = data.purchase[data.purchase >= 0]
    returns = data.returns[data.returns >= 0]
    top_items = np.argsort(-np.bincount(events.item), kind="stable")[:TOP_PRIORS]
    top_cats = np.argsort(-np.bincount(events.category), kind="stable")[:TOP_PRIORS]
    return Priors(
        behavior=(behavior / max(behavior.sum(), 1.0)).tolist(),
        purchase=float(purchase.mean()) if len(purchase) else 0.0,
        return_=float(returns.mean()) if len(returns) else 0.0,
        top_items=[str(events.item_ids[c]) for c in top_items],
        top_categories=[str(events.category_ids[c]) for c in top_cats],
    )


def _warm_start(
    net: SeqNet, path: Path, items: Vocab, categories: Vocab, old: dict[str, Any]
) -> None:
    """Copy an earlier model's weights into net; vocabulary rows are remapped (known ids keep
    their index, OOV buckets move behind the appended new ids)."""
    state = old["state_dict"]
    old_items, old_cats = len(old["items"]), len(old["categories"])
    rows = {
        "item_emb.weight": (old_items, items.n_known),
        "item_bias": (old_items, items.n_known),
        "category_emb.weight": (old_cats, categories.n_known),
        "category_bias": (old_cats, categories.n_known),
    }
    own = net.state_dict()
    with torch.no_grad():
        for name, value in state.items():
            if name in rows:
                k_old, k_new = rows[name]
                target = own[name]
                keep = 2 + k_old  # padding, missing, the old known ids
                target[:keep] = value[:keep]
                n_oov = min(len(value) - keep, len(target) - (2 + k_new))
                target[2 + k_new : 2 + k_new + n_oov] = value[keep : keep + n_oov]
            elif name in own and own[name].shape == value.shape:
                own[name].copy_(value)
            else:
                logger.warning("warm start from %s: %s does not fit this network; not copied",
                            path, name)


def _popularity_biases(net: SeqNet, data: Indexed) -> None:
    """Start the item and category output biases at the log of the training frequencies
    (add-one smoothed), so the generator starts from popularity rather than uniform: a
    sampled softmax rarely draws a rare row as a negative, so a zero start leaves the long
    tail ranked as high as the head for many epochs."""
    with torch.no_grad():
        for bias, index in ((net.item_bias, data.item), (net.category_bias, data.category)):
            counts = np.bincount(index, minlength=len(bias)).astype(np.float64) + 1.0
            logf = np.log(counts / counts.sum())
            bias.copy_(torch.from_numpy(logf - logf.mean()).float())


def _proposal(index: np.ndarray, size: int, device: torch.device) -> Tensor:
    """Negative-sampling distribution over vocabulary rows: training counts (+1) to the
    power 0.75 (word2vec's choice: frequent rows often, the tail still reachable)."""
    counts = np.bincount(index, minlength=size).astype(np.float64) + 1.0
    q = counts**0.75
    return torch.from_numpy(q / q.sum()).float().to(device)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict written by TrainedModel.save_checkpoint (a dir or a file)."""
    file = path / CHECKPOINT if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no {CHECKPOINT} to warm-start from")
    return dict(torch.load(file, map_location="cpu", weights_only=True))


def fit(
    cfg: TrainConfig,
    log: EventLog,
    split: TimeSplit,
    *,
    tz_offset_seconds: int,
    init_from: Path | None = None,
    progress: bool = True,
) -> TrainedModel:
    """Train on events before split.val_cutoff with early stopping on the validation points,
    restore the best epoch, fit the temperatures and the surprise quantiles."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(cfg.device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    talk = progress and rank == 0
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    old = load_checkpoint(init_from) if init_from is not None else None
    if old is not None:
        arch = {k: old["net_config"][k] for k in ("d_model", "n_layers", "n_heads", "encoder")}
        arch["window_len"] = old["net_config"]["window_len"]
        arch["copy"] = old["net_config"].get("copy", False)
        arch["behavior_stats"] = old["net_config"].get("behavior_stats", False)
        if any(getattr(cfg, k) != v for k, v in arch.items()):
            logger.warning("warm start: architecture taken from %s: %s", init_from, arch)
        cfg = replace(cfg, **arch)

    train = log.take(log.ts < split.val_cutoff)
    if len(train) == 0:
        raise ValueError("no training events before the validation cutoff")
    spec = FeatureSpec(
        window_len=cfg.window_len,
        tz_offset_seconds=tz_offset_seconds,
        n_oov_items=cfg.n_oov_items,
        n_oov_categories=cfg.n_oov_categories,
    )
    # Vocabularies from everything before the test cutoff: a model deployed there has seen
    # those ids, and an id missing from the vocabulary can never be ranked (nor copied).
    seen = log.take(log.ts < split.test_cutoff)
    items = build_vocab(
        seen.item_ids, seen.item, cfg.min_item_count, cfg.n_oov_items,
        list(old["items"]) if old else [],
    )
    categories = build_vocab(
        seen.category_ids, seen.category, cfg.min_category_count, cfg.n_oov_categories,
        list(old["categories"]) if old else [],
    )
    item_index = index_table(log.item_ids, items)
    cat_index = index_table(log.category_ids, categories)
    data = Indexed.of(train, item_index, cat_index, cfg, split.val_cutoff - 1)
    val, n_val = _validation(log, split, cfg, spec, item_index, cat_index)
    starts, lengths = training_windows(train, cfg.window_len)

    net_cfg = NetConfig(
        n_items=items.size,
        n_categories=categories.size,
        n_gaps=spec.n_gap_buckets,
        window_len=cfg.window_len,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        dropout=cfg.dropout,
        encoder=cfg.encoder,
        copy=cfg.copy,
        behavior_stats=cfg.behavior_stats,
    )
    net = SeqNet(net_cfg)
    _popularity_biases(net, data)
    if old is not None and init_from is not None:
        _warm_start(net, init_from, items, categories, old)
    net.to(device)
    item_q = _proposal(data.item, items.size, device)
    category_q = _proposal(data.category, categories.size, device)
    step_module = TrainStep(net, item_q.log(), category_q.log())
    model: nn.Module = step_module
    if world > 1:
        model = DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None
        )
    decay = [p for n, p in net.named_parameters() if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in net.named_parameters() if p.dim() < 2 or "emb" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(cfg.warmup_steps, 1))
    )
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    windows = cast(Dataset[int], range(len(starts)))  # the sampler only needs len()
    sampler: DistributedSampler[int] | None = (
        DistributedSampler(windows, world, rank, shuffle=True, seed=cfg.seed)
        if world > 1
        else None
    )
    if talk:
        logger.info(
            "training %s: %d events (%d windows), %d of %d validation points, %d items + %d "
            "OOV, %d categories + %d OOV, %d parameters, device %s",
            cfg.encoder, len(train), len(starts), len(val), n_val, items.n_known,
            items.n_oov,
            categories.n_known, categories.n_oov, n_parameters(net), device,
        )

    weights = torch.tensor(cfg.head_weights(), device=device)
    history: list[dict[str, Any]] = []
    best = float("inf")
    best_state = copy.deepcopy(net.state_dict())
    best_epoch, bad = 0, 0
    for epoch in range(1, cfg.max_epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
            order = np.asarray(list(iter(sampler)), dtype=np.int64)
        else:
            order = rng.permutation(len(starts))
        net.train()
        sums = torch.zeros(len(HEAD_NAMES), dtype=torch.float64)
        n_steps, n_events = 0, 0
        t0, cpu0 = time.perf_counter(), time.process_time()
        for b in length_batches(order, lengths, cfg.batch_size, rng):
            width = int(lengths[b].max())  # left padding beyond the longest window is dropped
            feats, where = data.batch(starts[b], lengths[b], spec, width)
            inputs = [torch.from_numpy(feats[k]).to(device) for k in INPUT_NAMES]
            targets = {k: torch.from_numpy(v).to(device) for k, v in _targets(data, where).items()}
            item_negatives = (
                torch.multinomial(item_q, cfg.n_negatives, replacement=True, generator=gen)
                if cfg.item_loss == "sampled"
                else None
            )
            category_negatives = (
                torch.multinomial(
                    category_q, cfg.n_category_negatives, replacement=True, generator=gen
                )
                if cfg.category_loss == "sampled"
                else None
            )
            losses = model(inputs, targets, item_negatives, category_negatives)
            opt.zero_grad(set_to_none=True)
            (losses * weights).sum().backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            sums += losses.detach().double().cpu()
            n_steps += 1
            n_events += int(lengths[b].sum())
            if talk and n_steps % 50 == 0:
                rate = n_events / (time.perf_counter() - t0)
                sys.stderr.write(
                    f"\repoch {epoch} step {n_steps}: loss {float(losses.sum()):.3f}, "
                    f"{rate:,.0f} events/s"
                )
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - cpu0
        train_losses = (sums / max(n_steps, 1)).tolist()
        val_losses = _validation_losses(net, val, device)
        val_total = sum(
            w * val_losses[k] for w, k in zip(cfg.head_weights(), HEAD_NAMES, strict=True)
        )
        record = {
            "epoch": epoch,
            "train_loss": dict(zip(HEAD_NAMES, train_losses, strict=True)),
            "val_loss": val_losses,
            "train_total": sum(
                w * v for w, v in zip(cfg.head_weights(), train_losses, strict=True)
            ),
            "val_total": val_total,
            "events_per_s": n_events * world / seconds,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "train_events": n_events * world,
        }
        history.append(record)
        if talk:
            sys.stderr.write("\r")
            logger.info(
                "epoch %d: %.0f events/s, train %.3f, val %.3f (%s)",
                epoch, record["events_per_s"], record["train_total"], val_total,
                ", ".join(f"{k} {v:.3f}" for k, v in val_losses.items()),
            )
        if not np.isfinite(val_total) or val_total < best - 1e-4:
            best, best_epoch, bad = val_total, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            bad += 1
            if bad >= cfg.patience:
                if talk:
                    logger.info("early stop: no improvement for %d epochs", bad)
                break
    net.load_state_dict(best_state)
    net.eval()
    if talk:
        logger.info("restored epoch %d (validation loss %.4f)", best_epoch, best)

    calibration, quantiles = _calibrate(net, val, device)
    net.cpu()
    return TrainedModel(
        net=net,
        spec=spec,
        items=items,
        categories=categories,
        cfg=cfg,
        history=history,
        calibration=calibration,
        priors=_priors(data, train, items, categories),
        surprise_quantiles=quantiles,
        stats={
            "best_epoch": best_epoch,
            "best_val_loss": best,
            "train_events": len(train),
            "validation_points": len(val),
            "parameters": n_parameters(net),
            "device": str(device),
            "world_size": world,
        },
    )


def _calibrate(
    net: SeqNet, val: Validation, device: torch.device
) -> tuple[Calibration, list[float]]:
    """Temperatures on the validation points, then the surprise quantiles under them."""
    out = _last_position_logits(net, val.features, device)
    t = {k: torch.from_numpy(v) for k, v in val.targets.items()}
    heads = {}
    for head, labels in (("behavior", t["behavior"]), ("purchase", t["purchase"]),
                         ("return", t["return"])):
        known = labels >= 0
        heads[head] = (out[head][known], labels[known])
    calibration = calibrate(heads)
    if len(val) == 0:
        return calibration, [0.0] * 101
    scorer = Scorer(net, calibration.temperatures).to(device).eval()
    means: list[np.ndarray] = []
    with torch.no_grad():
        step = SURPRISE_BATCH
        for lo in range(0, len(val), step):
            x = [torch.from_numpy(val.features[k][lo : lo + step]).to(device) for k in INPUT_NAMES]
            s = scorer(*x)[5].cpu().numpy()  # (B, T) event_surprise
            n = (x[2] > 0).sum(dim=1).cpu().numpy() - 1  # events with a prediction before
            has = n > 0
            means.append(s.sum(axis=1)[has] / n[has])
    flat = np.concatenate(means) if means else np.zeros(0)
    if len(flat) == 0:
        return calibration, [0.0] * 101
    return calibration, np.quantile(flat, np.linspace(0.0, 1.0, 101)).tolist()
