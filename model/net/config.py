"""The network's configuration: its architecture (what a checkpoint's weights fit) and
the vocabulary sizes of one trained network, as validated pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
