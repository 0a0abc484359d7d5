"""The window store on Redis: a standalone server (TLS with `rediss://`, password in the URL)
or a Redis Cluster, whichever the URL's server is (`app.store.redis_client`).

One Lua script per user does append + de-duplicate + order + trim + TTL atomically; a batch
covering many users is one pipelined round trip (on a cluster, one pipeline per node, sent
concurrently: a user's two keys share a hash tag, so each script runs on its slot's node).
Late events land in time order (the score); events with the same timestamp keep their
arrival order (the member's seq prefix). An erasure also asks for a rewrite of the
append-only file that still holds the user's events (`app.store.aof_rewrite`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from app.errors import StoreUnavailable
from app.metrics import Metrics
from app.store.aof_rewrite import AofRewrites, CommandTarget
from app.store.codec import decode_window, encode_event
from app.store.keys import pending_key, seen_key, window_key
from app.store.pending import RECORD_LUA, RESOLVE_LUA, Outcome, PendingPrediction
from app.store.redis_client import AnyRedis, connect
from app.store.window_store import AppendResult, StoredEvent
from model.features import Event

log = logging.getLogger(__name__)

# KEYS: window, seen, pending. ARGV: window_len, ttl_seconds, seen_capacity, now, then
# (event_id, ts, payload, behavior) quadruples. Returns {added, duplicates, window length,
# then the pairs of the pending predictions the new events scored (app.store.pending)}.
APPEND_LUA = """
local window_len = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local seen_cap = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local seq = 0
if last[2] then seq = tonumber(last[2]) end
local added, dups = 0, 0
local new = {}
for i = 5, #ARGV, 4 do
  local eid = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], eid) then
    dups = dups + 1
  else
    seq = seq + 1
    redis.call('ZADD', KEYS[2], seq, eid)
    redis.call('ZADD', KEYS[1], ARGV[i + 1], string.format('%012x', seq) .. '|' .. ARGV[i + 2])
    added = added + 1
    new[added] = {tonumber(ARGV[i + 1]), tonumber(ARGV[i + 3])}
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(window_len + 1))
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(seen_cap + 1))
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
""" + RESOLVE_LUA + """
local reply = {added, dups, redis.call('ZCARD', KEYS[1])}
for _, x in ipairs(resolved) do reply[#reply + 1] = x end
return reply
"""


@dataclass(frozen=True)
class Script:
    """A Lua script, run by its SHA (loaded again where a server lacks it)."""

    lua: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.lua.encode()).hexdigest()


APPEND = Script(APPEND_LUA)
RECORD = Script(RECORD_LUA)

# A failure is logged at most this often: while Redis is down every request fails alike.
FAILURE_LOG_SECONDS = 10.0
# How long closing the store waits for the AOF rewrites that erasures asked for.
REWRITE_CLOSE_SECONDS = 10.0

# Script calls: (keys, args) of one append script run each.
ScriptCall = tuple[list[str], list[str | int | float]]


def redact_url(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"


class RedisWindowStore:
    """WindowStore on a standalone Redis or a Redis Cluster, detected at the first command.

    The client is made on first use, not here: the server decides which kind it needs, and
    a Redis that is down at start-up only delays that (503 until it answers).
    `erasure_rewrite_seconds`: the longest wait from an erasure to the AOF rewrite that
    drops it (0: no rewrites; see `app.store.aof_rewrite`).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        ttl_seconds: int,
        seen_capacity: int,
        metrics: Metrics,
        erasure_rewrite_seconds: float,
        timeout_seconds: float = 1.0,
    ) -> None:
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.seen_capacity = seen_capacity
        self.metrics = metrics
        self.display_url = redact_url(url)
        self._url = url
        self._timeout_seconds = timeout_seconds
        self._client: AnyRedis | None = None
        self._connecting = asyncio.Lock()
        self._rewrites = AofRewrites(self._node, interval=erasure_rewrite_seconds)
        self._durations: dict[str, Any] = {}
        self._up = False
        self._last_failure_log = -FAILURE_LOG_SECONDS

    async def client(self) -> AnyRedis:
        """The connected client (standalone or cluster), made on the first call."""
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    self._client = await connect(self._url, timeout_seconds=self._timeout_seconds)
                    # An erasure whose rewrite a crash cut short is covered by this one.
                    self._rewrites.request(self._nodes(self._client))
        if isinstance(self._client, RedisCluster):
            # redis-py drops its map of the cluster on CLUSTERDOWN (a node restarting), and
            # until it reloads it routes the next keyed command to any node, which may be
            # that one: reload it first (a no-op while the map is loaded).
            await self._client.initialize()
        return self._client

    @staticmethod
    def _nodes(client: AnyRedis, key: str | None = None) -> list[str]:
        """Names of the servers that hold `key` (every window without one): "" for a
        standalone server, else the primary of the key's slot (all primaries)."""
        if not isinstance(client, RedisCluster):
            return [""]
        node = None if key is None else client.get_node_from_key(key)
        return [node.name] if node is not None else [n.name for n in client.get_primaries()]

    def _node(self, name: str) -> CommandTarget | None:
        if isinstance(self._client, RedisCluster):
            return self._client.get_node(node_name=name)
        return self._client

    @contextmanager
    def _op(self, op: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except (RedisError, RedisClusterException, OSError) as exc:
            self.metrics.redis_up.set(0)
            self._up = False
            if start - self._last_failure_log >= FAILURE_LOG_SECONDS:
                self._last_failure_log = start
                log.error("redis %s at %s failed: %s: %s",
                          op, self.display_url, type(exc).__name__, exc)
            raise StoreUnavailable(
                f"the window store is unavailable ({type(exc).__name__})"
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
        head: list[str | int | float] = [window_len, self.ttl_seconds, self.seen_capacity,
                                         repr(time.time())]
        calls: list[ScriptCall] = []
        for user in users:
            args = list(head)
            for stored in batches[user]:
                args += [stored.event_id, repr(stored.event.ts), encode_event(stored.event),
                         int(stored.event.behavior)]
            calls.append(([window_key(self.prefix, user), seen_key(self.prefix, user),
                           pending_key(self.prefix, user)], args))
        with self._op("append"):
            client = await self.client()
            replies = await self._run_scripts(client, APPEND, calls)
        return {
            user: AppendResult(int(r[0]), int(r[1]), int(r[2]), tuple(
                Outcome.parse(r[i], r[i + 1]) for i in range(3, len(r), 2)
            ))
            for user, r in zip(users, replies, strict=True)
        }

    async def record(
        self, predictions: Mapping[str, Sequence[PendingPrediction]], *, capacity: int,
        ttl_seconds: int,
    ) -> list[PendingPrediction]:
        """Keep served predictions beside their users' windows until their outcomes arrive
        (the `capacity` latest per user, for `ttl_seconds`); those newly kept (a version's
        prediction for a window state already kept is not kept twice)."""
        calls: list[ScriptCall] = []
        given: list[PendingPrediction] = []
        for user, pending in predictions.items():
            args: list[str | int | float] = [capacity, ttl_seconds]
            for p in pending:
                args += [p.field, p.encode()]
                given.append(p)
            calls.append(([pending_key(self.prefix, user)], args))
        if not calls:
            return []
        with self._op("record"):
            client = await self.client()
            replies = await self._run_scripts(client, RECORD, calls)
        added = [int(flag) for reply in replies for flag in reply]
        return [p for p, flag in zip(given, added, strict=True) if flag]

    async def _run_scripts(
        self, client: AnyRedis, script: Script, calls: list[ScriptCall]
    ) -> list[Any]:
        """The script's replies, by its SHA; a server without the script (a fresh or
        restarted node) gets it loaded, and only the calls it refused run again."""
        replies = await self._evalsha(client, script, calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await client.script_load(script.lua)  # on a cluster: into every primary
            again = await self._evalsha(client, script, [calls[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    @staticmethod
    async def _evalsha(client: AnyRedis, script: Script, calls: list[ScriptCall]) -> list[Any]:
        """One EVALSHA per call, pipelined; each reply or its error, in order."""
        if len(calls) == 1:  # a pipeline of one command costs more than the command
            keys, args = calls[0]
            try:
                return [await client.execute_command("EVALSHA", script.sha, len(keys), *keys,
                                                     *args)]
            except NoScriptError as exc:
                return [exc]
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                # execute_command: the cluster pipeline refuses its evalsha method, yet
                # routes EVALSHA by its keys like any keyed command.
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def read(self, user_ids: Sequence[str]) -> list[list[Event]]:
        """Each user's window, oldest event first (empty for an unknown user)."""
        if not user_ids:
            return []
        with self._op("read"):
            client = await self.client()
            if len(user_ids) == 1:  # a pipeline of one command costs more than the command
                key = window_key(self.prefix, user_ids[0])
                replies = [cast(list[str], await client.zrange(key, 0, -1))]
            else:
                async with client.pipeline(transaction=False) as pipe:
                    for user in user_ids:
                        pipe.zrange(window_key(self.prefix, user), 0, -1)
                    replies = await pipe.execute()
        return [decode_window(members) for members in replies]

    async def delete(self, user_id: str) -> bool:
        """Erase the user's window and seen ids; True when there was something to erase.

        Either way the AOF of the user's node is rewritten soon after: a window that
        expired is gone from memory, not from the commands in the file that wrote it.
        """
        key = window_key(self.prefix, user_id)
        with self._op("delete"):
            client = await self.client()
            removed = await client.delete(key, seen_key(self.prefix, user_id),
                                          pending_key(self.prefix, user_id))
        self._rewrites.request(self._nodes(client, key))
        return bool(removed)

    async def ping(self) -> bool:
        """Whether the store answers: the server, or on a cluster a node of it (a node that
        is down fails only the requests of its users, on every replica of the service)."""
        try:
            with self._op("ping"):
                client = await self.client()
                await client.ping()
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        """Finish the AOF rewrites that erasures asked for, then disconnect."""
        if self._client is None:
            return
        await self._rewrites.close(REWRITE_CLOSE_SECONDS)
        await self._client.aclose()
