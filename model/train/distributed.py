"""Where training runs: CPU, CUDA, or PyTorch DDP under `torchrun` (WORLD_SIZE > 1).

Under torchrun every rank trains on the windows of its own users (`Placement.user_share`),
the same number of steps per epoch (`Placement.fewest`); rank 0 alone scores the
validation set and hands the epoch's record, and so the early-stopping decision, to the
others (`Placement.from_leader`). After training rank 0 exports, evaluates and publishes
while the others wait in `Placement.finish`, then all leave together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")

CONTROL_TIMEOUT = timedelta(hours=12)
"""How long a rank waits on rank 0 (its validation, then its export and evaluation, which
at 100M events take hours); the default group's 30 minutes would end such a run."""


@dataclass(frozen=True)
class Placement:
    """This process's device and its rank among `world` processes (torchrun's variables).
    control: a gloo group for the small messages and waits between ranks (CPU objects, on
    CPU and CUDA runs alike, with CONTROL_TIMEOUT)."""

    device: torch.device
    world: int = 1
    rank: int = 0
    control: Any = None

    @classmethod
    def setup(cls, device: str) -> Placement:
        """Reads torchrun's environment and joins the process group when there is one."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        placed = _device(device, local_rank)
        if world == 1:
            return cls(placed)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if placed.type == "cuda" else "gloo")
        return cls(placed, world, rank, dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT))

    @classmethod
    def local(cls, device: str) -> Placement:
        """One process, whatever the environment says (a baseline fitted on rank 0)."""
        return cls(_device(device, 0))

    @property
    def leader(self) -> bool:
        """Rank 0: the process that validates, logs, exports and evaluates."""
        return self.rank == 0

    def wrap(self, net: nn.Module) -> nn.Module:
        """net as the module to call for training steps (DDP when distributed)."""
        if self.world == 1:
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def user_share(
        self, starts: np.ndarray, lengths: np.ndarray, user_starts: np.ndarray, seed: int
    ) -> np.ndarray:
        """Indices of the windows (starts, lengths) this rank trains on: those of its users.
        The users, in a seeded random order, are cut into `world` runs of about equal event
        counts, so a user's windows all stay on one rank and the ranks' shares match in size.
        user_starts: the first event of each user (`Indexed.user_starts`)."""
        if self.world == 1:
            return np.arange(len(starts))
        user = np.searchsorted(user_starts, starts, side="right") - 1
        events = np.bincount(user, weights=lengths, minlength=len(user_starts)).astype(np.int64)
        order = np.random.default_rng(seed).permutation(len(user_starts))
        before = np.cumsum(events[order]) - events[order]  # events of the users dealt earlier
        rank_of = np.empty(len(user_starts), dtype=np.int64)
        rank_of[order] = np.minimum(before * self.world // max(events.sum(), 1), self.world - 1)
        return np.flatnonzero(rank_of[user] == self.rank)

    def fewest(self, n: int) -> int:
        """The smallest n over the ranks: the steps every rank takes (DDP steps together)."""
        return self._reduce(n, dist.ReduceOp.MIN)

    def total(self, n: int) -> int:
        """The sum of n over the ranks."""
        return self._reduce(n, dist.ReduceOp.SUM)

    def from_leader(self, make: Callable[[], T]) -> T:
        """make() computed on rank 0 and handed to every rank (a picklable object)."""
        if self.world == 1:
            return make()
        box: list[Any] = [make() if self.leader else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def finish(self) -> None:
        """Every rank waits here until rank 0 arrives (its artifact written), then all
        leave the process group. Nothing on a single process."""
        if self.world == 1:
            return
        dist.barrier(group=self.control)
        dist.destroy_process_group()

    def _reduce(self, n: int, op: Any) -> int:
        if self.world == 1:
            return n
        value = torch.tensor([n], dtype=torch.int64)
        dist.all_reduce(value, op=op, group=self.control)
        return int(value.item())


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)
