"""The training configuration: a typed, validated pydantic model with named presets.

`TrainConfig.preset(name, **overrides)` is how runs are configured (the CLI's `--set
NAME=VALUE` passes its strings here; pydantic coerces them). The network's architecture
fields come from `model.net.config.Architecture`, so they are declared and checked once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError

from model.errors import SeqcastError
from model.net.config import HEAD_NAMES, Architecture, NetConfig
from model.presets import PRESETS

Loss = Literal["sampled", "full"]


class ConfigError(SeqcastError, ValueError):
    """An unknown preset or a field value TrainConfig refuses, in one line naming each."""


class TrainConfig(Architecture):
    """Everything that decides a training run. `TrainConfig.preset(name, **overrides)`."""

    # pointer heads for item and category (model.net.copy_head.CopyHead)
    copy_heads: bool = Field(default=True, alias="copy")
    behavior_stats: bool = True  # prefix behavior counts in every token (model.net)
    dropout: float = 0.1
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    max_epochs: int = 20
    patience: int = 3
    seed: int = 0
    # Items seen fewer times before the test cutoff share hashed OOV buckets. 1: an item the
    # model cannot name can neither be predicted nor copied from the window, so every id
    # seen at least once keeps its own row.
    min_item_count: int = 1
    min_category_count: int = 1
    n_oov_items: int = 1024
    n_oov_categories: int = 64
    horizon_seconds: int = 86400
    return_gap_seconds: int = 1800
    # Loss weights of the heads, in the training loss and the early-stopping criterion. The
    # small heads' losses are a few tenths of a nat against the ranking heads' 4-10, so
    # unweighted the shared encoder and the early stopping serve the ranking heads alone.
    behavior_weight: float = 5.0
    purchase_weight: float = 3.0
    return_weight: float = 1.0
    category_weight: float = 1.0
    item_weight: float = 1.0
    item_loss: Loss = "sampled"  # "sampled" (log-Q corrected sampled softmax) | "full"
    n_negatives: int = 1024  # negatives shared by a batch, sampled item softmax
    category_loss: Loss = "sampled"  # docs/model.md: speed vs quality
    n_category_negatives: int = 256
    # "auto" (CUDA when present) | "cpu" | "cuda" | "cuda:N"
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")
    # Early stopping, calibration and the surprise quantiles use a seeded sample of this
    # many validation points: each is a full-window forward, run every epoch, so scoring
    # all of a large log's points would cost several epochs' training.
    max_val_points: int = 4096

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """A preset with overrides (attribute or JSON names), validated and coerced. Raises
        ConfigError naming the preset or each refused field."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        try:
            return cls.model_validate({**PRESETS[name], **overrides})
        except ValidationError as exc:
            raise ConfigError(f"{cls.__name__}: {_one_line(exc)}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (checkpoints, the manifest's extra), which `preset` reads back."""
        return self.model_dump(by_alias=True)

    def net_config(self, n_items: int, n_categories: int, n_gaps: int) -> NetConfig:
        """The network this run trains, for vocabularies and gap buckets of these sizes."""
        return NetConfig(
            n_items=n_items, n_categories=n_categories, n_gaps=n_gaps, dropout=self.dropout,
            **self.architecture(),
        )

    def head_weights(self) -> list[float]:
        """Loss weight of each head, in HEAD_NAMES order."""
        weights = {
            "behavior": self.behavior_weight,
            "purchase": self.purchase_weight,
            "return": self.return_weight,
            "category": self.category_weight,
            "item": self.item_weight,
        }
        return [weights[head] for head in HEAD_NAMES]


def _one_line(exc: ValidationError) -> str:
    """Each refused field with its value and pydantic's reason, on one line."""
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        reason = error["msg"].removeprefix("Value error, ")
        parts.append(f"{field}={error['input']!r}: {reason}" if field else reason)
    return "; ".join(parts)
