"""Where training runs: CPU, CUDA, or PyTorch DDP under `torchrun` (WORLD_SIZE > 1)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class Placement:
    """This process's device and its rank among `world` processes (torchrun's variables)."""

    device: torch.device
    world: int
    rank: int

    @classmethod
    def setup(cls, device: str) -> Placement:
        """Reads torchrun's environment and joins the process group when there is one."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        placed = cls(_device(device, local_rank), world, rank)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if placed.device.type == "cuda" else "gloo")
        return placed

    @property
    def leader(self) -> bool:
        """Rank 0, the process that logs."""
        return self.rank == 0

    def wrap(self, net: nn.Module) -> nn.Module:
        """net as the module to call for training steps (DDP when distributed)."""
        if self.world == 1:
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def sampler(self, n_windows: int, seed: int) -> DistributedSampler[int] | None:
        """This rank's share of the windows each epoch, or None on a single process."""
        if self.world == 1:
            return None
        windows = cast(Dataset[int], range(n_windows))  # the sampler only needs len()
        return DistributedSampler(windows, self.world, self.rank, shuffle=True, seed=seed)


def epoch_order(
    sampler: DistributedSampler[int] | None, epoch: int, n_windows: int, rng: np.random.Generator
) -> np.ndarray:
    """The windows this process trains on in this epoch, in order."""
    if sampler is None:
        return rng.permutation(n_windows)
    sampler.set_epoch(epoch)
    return np.asarray(list(iter(sampler)), dtype=np.int64)


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)
