"""`fit`: the training run, from an event log and a time split to a calibrated TrainedModel.

Training data are the events before split.val_cutoff, cut per user into windows of window_len
events counted back from the user's last training event (the first window of a user is the
short, left-padded one). Every position of a window is a prediction point: its next-event
targets are the user's following event (for a window's last position that is the first
event of the next window), its purchase and return labels those of `model.sequences`,
censored at the validation cutoff and left out of the loss where censored.

Early stopping and calibration use `model.sequences.validation_points`, scored like the
service scores them: the last position of each window. Every window is featurized by
`model.features.featurize_indexed`, the code the service path shares.

Runs on CPU by default, on CUDA when present (device="auto"), and as PyTorch DDP on the
`Placement` of a torchrun run (`model.train.distributed`: each rank trains on its users'
windows, rank 0 validates and hands every rank the epoch's record; rank 0 logs).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from model.features import INPUT_NAMES
from model.net.config import HEAD_NAMES
from model.net.network import SeqNet, Targets, n_parameters
from model.progress import progress_bar
from model.sequences import EventLog, TimeSplit
from model.train.batches import length_batches
from model.train.checkpoint import load_checkpoint, warm_start, with_checkpoint_architecture
from model.train.config import TrainConfig
from model.train.dataset import RunData, prepare
from model.train.distributed import Placement
from model.train.frequencies import Proposal, popularity_biases
from model.train.trained import TrainedModel
from model.train.validation import calibrate_on, validation_losses

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 50  # steps between progress updates (each reads the loss back from the device)


def fit(
    cfg: TrainConfig,
    log: EventLog,
    split: TimeSplit,
    *,
    tz_offset_seconds: int,
    init_from: Path | None = None,
    progress: bool = True,
    place: Placement | None = None,
) -> TrainedModel:
    """Train on events before split.val_cutoff with early stopping on the validation points,
    restore the best epoch, choose the calibrators and fit the anomaly tables. place: where
    (default: one process on cfg.device); on a distributed placement every rank returns
    the same model."""
    place = place or Placement.local(cfg.device)
    talk = progress and place.leader
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    old = load_checkpoint(init_from) if init_from is not None else None
    if old is not None and init_from is not None:
        cfg = with_checkpoint_architecture(cfg, old, init_from)
    run = prepare(cfg, log, split, tz_offset_seconds, old)
    net = SeqNet(cfg.net_config(run.items.size, run.categories.size, run.spec.n_gap_buckets))
    popularity_biases(net, run.data)
    if old is not None and init_from is not None:
        warm_start(net, init_from, run.items, run.categories, old)
    net.to(place.device)
    if talk:
        logger.info(
            "training %s: %d events (%d windows), %d of %d validation points, %d items + %d "
            "OOV, %d categories + %d OOV, %d parameters, device %s",
            cfg.encoder, run.n_train, len(run.starts), len(run.val), run.n_val,
            run.items.n_known, run.items.n_oov, run.categories.n_known, run.categories.n_oov,
            n_parameters(net), place.device,
        )
    stopping = _train(cfg, net, run, place, rng, talk)
    net.load_state_dict(stopping.best_state)
    net.eval()
    if talk:
        logger.info("restored epoch %d (validation loss %.4f)", stopping.best_epoch,
                    stopping.best)
    calibration, quantiles, tables = calibrate_on(net, run.val, place.device, run.spec)
    net.cpu()
    return TrainedModel(
        net=net,
        spec=run.spec,
        items=run.items,
        categories=run.categories,
        cfg=cfg,
        history=stopping.history,
        calibration=calibration,
        priors=run.priors,
        surprise_quantiles=quantiles,
        anomaly_quantiles=tables,
        stats={
            "best_epoch": stopping.best_epoch,
            "best_val_loss": stopping.best,
            "train_events": run.n_train,
            "validation_points": len(run.val),
            "parameters": n_parameters(net),
            "device": str(place.device),
            "world_size": place.world,
        },
    )


@dataclass
class EarlyStopping:
    """The epochs' records, the best validation total so far and its weights, and how many
    epochs have passed without improving on it."""

    patience: int
    best_state: dict[str, Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = float("inf")
    best_epoch: int = 0
    bad: int = 0

    def update(self, net: nn.Module, record: dict[str, Any]) -> bool:
        """Record an epoch; True when training should stop."""
        self.history.append(record)
        val_total = record["val_total"]
        if not np.isfinite(val_total) or val_total < self.best - 1e-4:
            self.best, self.best_epoch, self.bad = val_total, record["epoch"], 0
            self.best_state = copy.deepcopy(net.state_dict())
            return False
        self.bad += 1
        return self.bad >= self.patience


@dataclass
class Optimizer:
    """`SeqNet.configure_optimizers` (AdamW for the dense parameters, a row-wise Adam for
    the item and category tables), each with the same linear warmup."""

    opts: list[torch.optim.Optimizer]
    scheds: list[torch.optim.lr_scheduler.LambdaLR]

    @classmethod
    def of(cls, net: SeqNet, cfg: TrainConfig) -> Optimizer:
        opts = net.configure_optimizers(cfg.lr, cfg.weight_decay)
        warmup = max(cfg.warmup_steps, 1)
        scheds = [torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
                  for opt in opts]
        return cls(opts, scheds)

    def step(self, loss: Tensor, params: Any, grad_clip: float) -> None:
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm(params, grad_clip)
        for opt, sched in zip(self.opts, self.scheds, strict=True):
            opt.step()
            sched.step()


def clip_grad_norm(params: Any, max_norm: float) -> None:
    """`nn.utils.clip_grad_norm_` for dense and sparse gradients (which it refuses): a
    sparse gradient is coalesced first (a row read twice holds two entries), so its norm is
    that of the dense gradient it stands for."""
    grads = []
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad.values())
        else:
            grads.append(p.grad)
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale)


def _train(
    cfg: TrainConfig, net: SeqNet, run: RunData, place: Placement, rng: np.random.Generator,
    talk: bool,
) -> EarlyStopping:
    """The epoch loop, until max_epochs or early stopping."""
    device = place.device
    model = place.wrap(net)
    optimizer = Optimizer.of(net, cfg)
    item_q = Proposal(run.data.item, run.items.size, device)
    category_q = Proposal(run.data.category, run.categories.size, device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + place.rank)
    mine = place.user_share(run.starts, run.lengths, run.data.user_starts(), cfg.seed)
    weights = torch.tensor(cfg.head_weights(), device=device)
    stopping = EarlyStopping(cfg.patience, copy.deepcopy(net.state_dict()))
    for epoch in range(1, cfg.max_epochs + 1):
        order = mine[rng.permutation(len(mine))]
        net.train()
        sums = torch.zeros(len(HEAD_NAMES), dtype=torch.float64)
        n_steps, n_events = 0, 0
        t0, cpu0 = time.perf_counter(), time.process_time()
        batches = length_batches(order, run.lengths, cfg.batch_size, rng)
        batches = batches[: place.fewest(len(batches))]
        bar = progress_bar(batches, desc=f"training epoch {epoch}", unit="batch", show=talk,
                           leave=False)
        for b in bar:
            inputs, targets = _batch(run, b, device)
            item_negatives = (
                item_q.sample(cfg.n_negatives, gen) if cfg.item_loss == "sampled" else None
            )
            category_negatives = (
                category_q.sample(cfg.n_category_negatives, gen)
                if cfg.category_loss == "sampled"
                else None
            )
            losses = model(*inputs, targets, item_negatives, category_negatives)
            loss = (losses * weights).sum()  # what is optimized, and what the bar shows
            optimizer.step(loss, net.parameters(), cfg.grad_clip)
            sums += losses.detach().double().cpu()
            n_steps += 1
            n_events += int(run.lengths[b].sum())
            if talk and n_steps % PROGRESS_EVERY == 0:
                rate = n_events / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{loss.item():.3f}", events_s=f"{rate:,.0f}")
        bar.close()
        n_events = place.total(n_events)
        record = place.from_leader(partial(
            _record, cfg, net, run, place, epoch, sums / max(n_steps, 1), n_events,
            time.perf_counter() - t0, time.process_time() - cpu0,
        ))
        if talk:
            logger.info(
                "epoch %d: %.0f events/s, train %.3f, val %.3f (%s)",
                epoch, record["events_per_s"], record["train_total"], record["val_total"],
                ", ".join(f"{k} {v:.3f}" for k, v in record["val_loss"].items()),
            )
        if stopping.update(net, record):
            if talk:
                logger.info("early stop: no improvement for %d epochs", stopping.bad)
            break
    return stopping


def _batch(run: RunData, b: np.ndarray, device: torch.device) -> tuple[list[Tensor], Targets]:
    """Inputs and targets of the windows b; left padding beyond the longest is dropped."""
    width = int(run.lengths[b].max())
    feats, where = run.data.batch(run.starts[b], run.lengths[b], run.spec, width)
    inputs = [torch.from_numpy(feats[k]).to(device) for k in INPUT_NAMES]
    t = {k: torch.from_numpy(v).to(device) for k, v in run.data.targets(where).items()}
    return inputs, Targets(t["behavior"], t["category"], t["item"], t["purchase"], t["return"])


def _record(
    cfg: TrainConfig, net: SeqNet, run: RunData, place: Placement, epoch: int,
    train_mean: Tensor, n_events: int, seconds: float, cpu_seconds: float,
) -> dict[str, Any]:
    """The epoch's history entry: training and validation losses, and throughput."""
    train_losses = train_mean.tolist()
    val_losses = validation_losses(net, run.val, place.device)
    weights = cfg.head_weights()
    return {
        "epoch": epoch,
        "train_loss": dict(zip(HEAD_NAMES, train_losses, strict=True)),
        "val_loss": val_losses,
        "train_total": sum(w * v for w, v in zip(weights, train_losses, strict=True)),
        "val_total": sum(w * val_losses[k] for w, k in zip(weights, HEAD_NAMES, strict=True)),
        "events_per_s": n_events / seconds,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "train_events": n_events,
    }
