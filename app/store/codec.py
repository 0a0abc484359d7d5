"""A window member's event payload: compact JSON `[item, category, behavior, ts]`.

The member is "<arrival seq>|<payload>"; the seq prefix is written by the append script, so
encoding produces only the payload, and decoding strips the prefix. One JSON library both
ways, and one parse for a whole window (a read returns up to window_len members).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from model.features import Event


def encode_event(event: Event) -> str:
    return orjson.dumps([event.item_id, event.category_id, int(event.behavior), event.ts]).decode()


def decode_window(members: Sequence[str]) -> list[Event]:
    """The events of a window's members, in the members' order."""
    rows = orjson.loads("[" + ",".join(m[m.index("|") + 1 :] for m in members) + "]")
    return [Event(item, category, int(behavior), float(ts))
            for item, category, behavior, ts in rows]
