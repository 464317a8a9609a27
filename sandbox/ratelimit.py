"""Per-key request rate limit of the sandbox API: a sliding window kept in Redis (the broker's),
so every web process shares one count. A request is admitted while fewer than ``limit`` were
admitted in the last ``window`` seconds; refused requests do not count.

Redis being away must not take the sandbox down with it: the limit then fails open (logged)."""

from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from redis.commands.core import Script

log = logging.getLogger(__name__)

# KEYS[1]: the key's log (a sorted set of admission times). ARGV: now, window (s), limit,
# member. Returns {admitted, count in the window after this request, score of the request
# whose expiry frees a slot} (scores as strings: Lua numbers become integers in replies).
_SCRIPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local admitted = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  count = count + 1
  admitted = 1
end
local index = count - limit
if index < 0 then index = 0 end
local freeing = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
return {admitted, count, freeing[2] or ARGV[1]}
"""

KEY_PREFIX = "tuneboard:sandbox:ratelimit:"


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    limit: int
    remaining: int
    reset_seconds: float  # until a slot frees (refused) or the window is empty of this one

    @property
    def retry_after(self) -> int:
        # Whole seconds, at least 1: clients sleep this long before trying again.
        return max(1, math.ceil(self.reset_seconds))


def redis_url(broker_url: str) -> str:
    """The broker URL in redis-py's spelling (kombu says ``redis+socket://``, redis-py
    ``unix://``)."""
    if broker_url.startswith("redis+socket://"):
        # kombu names the database ``virtual_host``; redis-py's unix URLs call it ``db``.
        return "unix://" + broker_url.removeprefix("redis+socket://").replace(
            "virtual_host=", "db="
        )
    return broker_url


@cache
def _script(url: str) -> Script:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client.register_script(_SCRIPT)  # EVALSHA, loading the script when Redis lacks it


def check(owner: str, *, limit: int, window: float) -> Verdict | None:
    """Count one request of ``owner``; None when Redis could not be asked (fail open)."""
    now = time.time()
    member = f"{now:.6f}:{secrets.token_hex(4)}"
    try:
        script = _script(redis_url(settings.CELERY_BROKER_URL))
        admitted, count, freeing = script(
            keys=[KEY_PREFIX + owner], args=[repr(now), repr(window), limit, member]
        )
    except Exception as exc:
        log.warning("sandbox: rate limit not checked (%s); request admitted", exc)
        return None
    return Verdict(
        admitted=bool(admitted),
        limit=limit,
        remaining=max(0, limit - int(count)),
        reset_seconds=max(0.0, float(freeing) + window - now),
    )
