"""Running a network over featurized windows in batches, without gradients: the one loop
that validation, calibration and `TrainedModel.predict` share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

Batch = dict[str, Tensor]


def map_batches(
    fn: Callable[[Batch], Sequence[Tensor]],
    arrays: Mapping[str, np.ndarray],
    batch_size: int,
    device: torch.device,
) -> list[Tensor]:
    """fn on consecutive slices of batch_size rows of arrays (as tensors on device), under
    no_grad; each of its outputs concatenated over the slices, on the CPU. Empty arrays
    give an empty list: fn is never called on an empty batch."""
    n = len(next(iter(arrays.values())))
    parts: list[list[Tensor]] = []
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            batch = {k: torch.from_numpy(v[lo : lo + batch_size]).to(device)
                     for k, v in arrays.items()}
            parts.append([out.cpu() for out in fn(batch)])
    return [torch.cat(outs) for outs in zip(*parts, strict=True)]
