"""The redis-py client a Redis URL needs: standalone, or Redis Cluster when the server is one.

`SEQCAST_REDIS_URL` may name a standalone server or any node of a cluster; the server says
which (`INFO cluster`), so one setting serves both shapes and no second one can contradict
it. A cluster client learns the other nodes from the one named and sends each key's commands
to the node that serves its slot.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

AnyRedis = aioredis.Redis | RedisCluster


async def connect(url: str, *, timeout_seconds: float) -> AnyRedis:
    """A client for the Redis at `url`, connected: a `RedisCluster` when the server runs in
    cluster mode, else a plain `Redis`."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        # One quick retry: the first command after a Redis restart meets a dead pooled
        # connection; more retries would only delay the 503 while Redis is really down.
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
    }
    standalone = aioredis.Redis.from_url(url, **options)
    try:
        cluster_enabled = (await standalone.info("cluster")).get("cluster_enabled") == 1
    except ResponseError as exc:
        # A user whose ACL refuses INFO: such a server is used as it was configured before
        # cluster support, standalone.
        log.warning("redis refused INFO cluster (%s); using it as a standalone server", exc)
        return standalone
    except BaseException:
        await standalone.aclose()
        raise
    if not cluster_enabled:
        return standalone
    await standalone.aclose()
    cluster = RedisCluster.from_url(url, **options)
    try:
        await cluster.initialize()
    except BaseException:
        await cluster.aclose()
        raise
    log.info("redis cluster mode: %d primaries", len(cluster.get_primaries()))
    return cluster
