"""The window store on Redis (standalone, TLS with `rediss://`, password in the URL).

One Lua script per user does append + de-duplicate + order + trim + TTL atomically; a batch
covering many users is one pipelined round trip. Late events land in time order (the score);
events with the same timestamp keep their arrival order (the member's seq prefix).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from app.errors import StoreUnavailable
from app.metrics import Metrics
from app.store.codec import decode_window, encode_event
from app.store.keys import seen_key, window_key
from app.store.window_store import AppendResult, StoredEvent
from model.features import Event

log = logging.getLogger(__name__)

# KEYS: window, seen. ARGV: window_len, ttl_seconds, seen_capacity, then (event_id, ts,
# payload) triples. Returns {added, duplicates, window length}.
APPEND_LUA = """
local window_len = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local seen_cap = tonumber(ARGV[3])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local seq = 0
if last[2] then seq = tonumber(last[2]) end
local added, dups = 0, 0
for i = 4, #ARGV, 3 do
  local eid = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], eid) then
    dups = dups + 1
  else
    seq = seq + 1
    redis.call('ZADD', KEYS[2], seq, eid)
    redis.call('ZADD', KEYS[1], ARGV[i + 1], string.format('%012x', seq) .. '|' .. ARGV[i + 2])
    added = added + 1
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(window_len + 1))
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(seen_cap + 1))
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return {added, dups, redis.call('ZCARD', KEYS[1])}
"""


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"


class RedisWindowStore:
    """WindowStore on Redis (standalone, TLS with `rediss://`, password in the URL)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        ttl_seconds: int,
        seen_capacity: int,
        metrics: Metrics,
        timeout_seconds: float = 1.0,
    ) -> None:
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.seen_capacity = seen_capacity
        self.metrics = metrics
        self.display_url = redact_url(url)
        # One quick retry: the first command after a Redis restart meets a dead pooled
        # connection; more retries would only delay the 503 while Redis is really down.
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self._append = self.client.register_script(APPEND_LUA)
        self._durations: dict[str, Any] = {}
        self._up = False

    @contextmanager
    def _op(self, op: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except (RedisError, OSError) as exc:
            if isinstance(exc, ResponseError) and "NOSCRIPT" not in str(exc):
                log.error("redis %s failed: %s", op, exc)
            self.metrics.redis_up.set(0)
            self._up = False
            raise StoreUnavailable(
                f"the window store at {self.display_url} is unavailable ({type(exc).__name__})"
            ) from None
        finally:
            duration = self._durations.get(op)
            if duration is None:
                duration = self._durations[op] = self.metrics.redis_duration.labels(op)
            duration.observe(time.perf_counter() - start)
        if not self._up:  # the gauge is a shared file with several workers: set on change
            self.metrics.redis_up.set(1)
            self._up = True

    async def append(
        self, batches: Mapping[str, Sequence[StoredEvent]], window_len: int
    ) -> dict[str, AppendResult]:
        """Append each user's events (one atomic script per user, one round trip in all)."""
        users = list(batches)
        if not users:
            return {}
        head = [window_len, self.ttl_seconds, self.seen_capacity]
        with self._op("append"):
            async with self.client.pipeline(transaction=False) as pipe:
                for user in users:
                    args: list[str | int | float] = list(head)
                    for stored in batches[user]:
                        args += [stored.event_id, repr(stored.event.ts),
                                 encode_event(stored.event)]
                    await self._append(
                        keys=[window_key(self.prefix, user), seen_key(self.prefix, user)],
                        args=args,
                        client=pipe,
                    )
                replies = await pipe.execute()
        return {
            user: AppendResult(int(r[0]), int(r[1]), int(r[2]))
            for user, r in zip(users, replies, strict=True)
        }

    async def read(self, user_ids: Sequence[str]) -> list[list[Event]]:
        """Each user's window, oldest event first (empty for an unknown user)."""
        if not user_ids:
            return []
        with self._op("read"):
            if len(user_ids) == 1:  # a pipeline of one command costs more than the command
                key = window_key(self.prefix, user_ids[0])
                replies = [cast(list[str], await self.client.zrange(key, 0, -1))]
            else:
                async with self.client.pipeline(transaction=False) as pipe:
                    for user in user_ids:
                        pipe.zrange(window_key(self.prefix, user), 0, -1)
                    replies = await pipe.execute()
        return [decode_window(members) for members in replies]

    async def delete(self, user_id: str) -> bool:
        """Erase the user's window and seen ids; True when there was something to erase."""
        with self._op("delete"):
            removed = await self.client.delete(
                window_key(self.prefix, user_id), seen_key(self.prefix, user_id)
            )
        return bool(removed)

    async def ttl(self, user_id: str) -> int:
        """Seconds until the user's window expires (-2 when there is none)."""
        with self._op("ttl"):
            return int(await self.client.ttl(window_key(self.prefix, user_id)))

    async def ping(self) -> bool:
        try:
            with self._op("ping"):
                await self.client.ping()
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self.client.aclose()
