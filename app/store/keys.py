"""Redis key names of a user's window.

Each user has two keys sharing one hash tag (so Redis Cluster keeps them on one slot):

    {prefix}:{<user_id>}:w      sorted set: the window, score = event time, member =
                                "<arrival seq, 12 hex>|<compact JSON event>" (app.store.codec)
    {prefix}:{<user_id>}:seen   sorted set: event ids already ingested, score = arrival seq
    {prefix}:{<user_id>}:p      hash: served predictions awaiting their outcome, field =
                                "<model version>|<prediction time>", value = JSON
                                (app.store.pending)
"""

from __future__ import annotations


def window_key(prefix: str, user_id: str) -> str:
    """Redis key of a user's window; `{user_id}` is the Redis Cluster hash tag."""
    return f"{prefix}:{{{user_id}}}:w"


def seen_key(prefix: str, user_id: str) -> str:
    """Redis key of a user's recently seen event ids (same hash tag as the window)."""
    return f"{prefix}:{{{user_id}}}:seen"


def pending_key(prefix: str, user_id: str) -> str:
    """Redis key of a user's served predictions awaiting their outcome (same hash tag)."""
    return f"{prefix}:{{{user_id}}}:p"
