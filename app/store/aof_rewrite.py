"""Append-only file rewrites after erasures: the erasure guarantee on a persisting Redis.

A DELETE removes a user's keys from Redis's memory at once, but the append-only file (AOF)
keeps the commands that wrote them until Redis rewrites it, which it does on its own only
when the file has doubled. So every erasure requests a rewrite (BGREWRITEAOF) of the node
that held the user, and `AofRewrites` serves the requests: at most one rewrite per node
every `interval` seconds, each request served by a rewrite that starts after it, at most
`interval` seconds later. A rewrite that Redis was already running when the request came
cannot cover it, so it is waited out and followed by a new one. A request is served when
its rewrite has finished, and closing the store serves the pending ones at once: a
graceful stop of the service (and of its embedded redis-server) leaves none behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from redis.exceptions import RedisClusterException, RedisError, ResponseError

log = logging.getLogger(__name__)

# How often a running rewrite is polled, and how long a failed request waits to try again.
POLL_SECONDS = 0.05
RETRY_SECONDS = 1.0


class CommandTarget(Protocol):
    """One Redis server: a standalone client, or one node of a cluster client."""

    async def execute_command(self, *args: Any, **options: Any) -> Any: ...


class RewriteFailed(RedisError):
    """Redis ran the rewrite and reported it failed (aof_last_bgrewrite_status: err)."""


async def rewrite_aof(target: CommandTarget) -> bool:
    """Rewrite `target`'s AOF with a rewrite started now, and wait until it has finished;
    False when the server keeps no AOF (then there is nothing to rewrite)."""
    while True:
        info = await target.execute_command("INFO", "persistence")
        if not info.get("aof_enabled"):
            return False
        if not info.get("aof_rewrite_in_progress"):
            try:
                await target.execute_command("BGREWRITEAOF")
                break
            except ResponseError as exc:  # another client's rewrite started in between
                if "already in progress" not in str(exc):
                    raise
        await asyncio.sleep(POLL_SECONDS)
    while info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled"):
        await asyncio.sleep(POLL_SECONDS)
        info = await target.execute_command("INFO", "persistence")
    if info.get("aof_last_bgrewrite_status") != "ok":
        raise RewriteFailed("the AOF rewrite failed; see the redis-server log")
    return True


class AofRewrites:
    """Rate-limited AOF rewrites per node, requested by erasures (see the module docstring).

    `target(node)` is the server a node name stands for; `interval` 0 turns requests off.
    """

    def __init__(self, target: Callable[[str], CommandTarget | None], *, interval: float) -> None:
        self._target = target
        self.interval = interval
        self._last_start: dict[str, float] = {}
        self._waiting: dict[str, asyncio.Task[None]] = {}  # requested, rewrite not started
        self._serving: set[asyncio.Task[None]] = set()

    def request(self, nodes: Iterable[str]) -> None:
        """Ask for a rewrite of each node that starts after now (within `interval`)."""
        if self.interval <= 0:
            return
        for node in nodes:
            if node in self._waiting:  # a rewrite not started yet covers this request too
                continue
            last = self._last_start.get(node)
            delay = 0.0 if last is None else max(0.0, last + self.interval - time.monotonic())
            task = asyncio.create_task(self._serve(node, delay), name=f"seqcast-aof-{node}")
            self._waiting[node] = task
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)

    async def _serve(self, node: str, delay: float) -> None:
        await asyncio.sleep(delay)
        # From here on a new request needs a new rewrite: this one may have started already.
        self._waiting.pop(node, None)
        self._last_start[node] = time.monotonic()
        await self._rewrite_until_done(node)

    async def _rewrite_until_done(self, node: str) -> None:
        failures = 0
        while True:
            target = self._target(node)
            if target is None:
                log.warning("redis node %s is no longer known: its AOF was not rewritten "
                            "after an erasure (run BGREWRITEAOF on it)", node)
                return
            try:
                await rewrite_aof(target)
                return
            except ResponseError as exc:
                log.warning("redis %s refused BGREWRITEAOF after an erasure (%s): erased "
                            "events stay in its AOF until it is rewritten (run "
                            "BGREWRITEAOF)", node or "server", exc)
                return
            except (RedisError, RedisClusterException, OSError) as exc:
                failures += 1
                if failures == 1:
                    log.warning("AOF rewrite of redis %s after an erasure failed (%s); "
                                "retrying until it succeeds", node or "server", exc)
            await asyncio.sleep(RETRY_SECONDS)

    async def close(self, timeout: float) -> None:
        """Serve the pending requests now, waiting up to `timeout` seconds for them."""
        self.interval = 0.0
        cancelled = set(self._waiting.values())
        for task in cancelled:
            task.cancel()
        tasks = self._serving - cancelled
        tasks |= {asyncio.create_task(self._rewrite_until_done(node)) for node in self._waiting}
        self._waiting.clear()
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.warning("%d AOF rewrite(s) after erasures did not finish before shutdown; "
                        "the next start of the service rewrites again", len(late))
