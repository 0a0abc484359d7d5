"""The named TrainConfig presets, as plain data: `seqcast train --help` lists them without
importing the trainer (and PyTorch); `model.train.config.TrainConfig.preset` applies them."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on a laptop core: tests, the demo artifact, smoke runs.
    "tiny": {
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "window_len": 20,
        "batch_size": 32,
        "lr": 5e-3,
        "warmup_steps": 10,
        "max_epochs": 8,
        "patience": 2,
        "n_oov_items": 64,
        "n_oov_categories": 16,
        "n_negatives": 256,
        "category_loss": "full",
    },
    "default": {},
}
# The demo `seqcast serve` trains on a first start: tiny, stopped sooner and validated on
# fewer points, so a fresh clone serves within 90 s on a busy 2-core machine.
PRESETS["demo"] = {**PRESETS["tiny"], "max_epochs": 6, "max_val_points": 2048}
