"""What the service needs from a window backend: the `WindowStore` interface and its values.

Routes and dependencies are typed against `WindowStore`, so a backend is anything with these
few methods; `app.store.redis_store` is the one the service builds.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.store.pending import Outcome, PendingPrediction
from model.features import Event


@dataclass(frozen=True)
class StoredEvent:
    """An event as ingested: the featurizer's Event plus its id (generated when absent)."""

    event_id: str
    event: Event


@dataclass(frozen=True)
class AppendResult:
    added: int
    duplicates: int
    length: int
    outcomes: tuple[Outcome, ...] = ()  # the user's pending predictions these events scored


def new_event_id() -> str:
    return uuid.uuid4().hex


class WindowStore(Protocol):
    """What the service needs from a window backend."""

    async def append(
        self, batches: Mapping[str, Sequence[StoredEvent]], window_len: int
    ) -> dict[str, AppendResult]: ...

    async def record(
        self, predictions: Mapping[str, Sequence[PendingPrediction]], *, capacity: int,
        ttl_seconds: int,
    ) -> list[PendingPrediction]: ...

    async def read(self, user_ids: Sequence[str]) -> list[list[Event]]: ...

    async def delete(self, user_id: str) -> bool: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...
