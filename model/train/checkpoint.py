"""Checkpoints: a trained network that describes itself (configs, vocabularies, weights),
and the warm start that continues from one with grown vocabularies."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from model.errors import SeqcastError
from model.features import FIRST_KNOWN, Vocab
from model.net.config import NetConfig
from model.net.network import SeqNet
from model.train.config import TrainConfig

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


class CheckpointError(SeqcastError, ValueError):
    """A checkpoint this version cannot continue from, with what to do instead."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict written by `TrainedModel.save_checkpoint` (a dir or a file)."""
    file = path / CHECKPOINT if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no {CHECKPOINT} to warm-start from")
    old = dict(torch.load(file, map_location="cpu", weights_only=True))
    if "item_bias_rows.weight" not in old["state_dict"]:
        raise CheckpointError(
            f"{file} was written by an older seqcast (output biases as (rows,) vectors, "
            "before the row-wise item tables): it cannot be continued; train without "
            "--init-from, or warm-start from an artifact this version trained"
        )
    return old


def with_checkpoint_architecture(cfg: TrainConfig, old: dict[str, Any], path: Path) -> TrainConfig:
    """cfg with the architecture of the checkpoint's network: its weights only fit that."""
    arch = NetConfig.model_validate(old["net_config"]).architecture()
    if any(getattr(cfg, k) != v for k, v in arch.items()):
        logger.warning("warm start: architecture taken from %s: %s", path, arch)
    return cfg.model_copy(update=arch)


def warm_start(
    net: SeqNet, path: Path, items: Vocab, categories: Vocab, old: dict[str, Any]
) -> None:
    """Copy an earlier model's weights into net; vocabulary rows are remapped (known ids keep
    their index, OOV buckets move behind the appended new ids)."""
    state = old["state_dict"]
    old_items, old_cats = len(old["items"]), len(old["categories"])
    rows = {
        "item_emb.weight": (old_items, items.n_known),
        "item_bias_rows.weight": (old_items, items.n_known),
        "category_emb.weight": (old_cats, categories.n_known),
        "category_bias_rows.weight": (old_cats, categories.n_known),
    }
    own = net.state_dict()
    with torch.no_grad():
        for name, value in state.items():
            if name in rows:
                k_old, k_new = rows[name]
                target = own[name]
                keep = FIRST_KNOWN + k_old  # padding, missing, the old known ids
                target[:keep] = value[:keep]
                first_oov = FIRST_KNOWN + k_new  # the OOV buckets, behind the new known ids
                n_oov = min(len(value) - keep, len(target) - first_oov)
                target[first_oov : first_oov + n_oov] = value[keep : keep + n_oov]
            elif name in own and own[name].shape == value.shape:
                own[name].copy_(value)
            else:
                logger.warning("warm start from %s: %s does not fit this network; not copied",
                               path, name)
