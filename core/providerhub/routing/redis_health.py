"""The `HealthStore` several gateway processes share: the memory store's rules, kept in Redis.

Every process pointed at the same Redis and `prefix` sees one circuit, cooldown, set of
requests in flight, trial count and latency estimate per provider. Each operation is one Lua
script run atomically by Redis (never a read-modify-write from Python), so two processes never
both win the half-open probe and no counter loses an update. Times are Redis's own clock
(`TIME`), so the processes' clocks need not agree.

Keys, per provider NAME: `{prefix}state:NAME` (a hash: failures, times opened, open until,
why, last failure, the probe's token, answered, latency), `{prefix}flight:NAME` and
`{prefix}trials:NAME` (sorted sets of ticket tokens scored by their expiry). A ticket expires
`TICKET_TTL` seconds after `admit` unless its process, still alive, refreshes it (every third of
that, while it holds tickets), so a process that dies holding tickets frees their places (and
the probe) within `TICKET_TTL`, and a long stream of a live one keeps counting.

Only `admit` and `snapshot` wait for Redis, at most `TIMEOUT` each. The reports are sent in
the background, up to `SENDING` at once, by a task that ends when there is nothing left to send
(`aclose` awaits it, at most `FLUSH` seconds). A report Redis could not take is kept and sent
once it answers again (at most `QUEUED` wait; past that the oldest are dropped, with one
warning), so a slow moment loses no outcome and frees every place. An `admit` that timed out or
was cancelled once sent may still have been granted by Redis: its token is released. When Redis
is unreachable, slow or errs, the process serves from its own `MemoryHealthStore` (one warning
per outage), tries Redis again `BACKOFF` seconds later, and says so (one info line) once it
answers again; the shared state then resumes from what Redis holds. A ticket is reported to the
store that gave it.

redis-py is imported here only (`pip install 'providerhub[redis]'`); importing providerhub
does not import this module.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config.spec import HealthSettings
from ..errors import AtCapacityError, CoolingDownError
from .health import MemoryHealthStore, ProviderHealth, Refusal, Ticket, circuit_state

__all__ = ["BACKOFF", "CONNECTIONS", "TICKET_TTL", "TIMEOUT", "RedisHealthStore"]

log = logging.getLogger("providerhub.routing")

TIMEOUT = HealthSettings().timeout
"""Seconds an operation may wait for Redis before this process falls back to its own view
(`[health] timeout`, 75 ms)."""
BACKOFF = 1.0
"""Seconds after a failed operation before Redis is tried again."""
TICKET_TTL = 30.0
"""Seconds a ticket holds its place (and the probe) unless reported or refreshed first."""
CONNECTIONS = 16
"""Connections a store opens to Redis at most (per event loop); more callers wait their turn,
within `TIMEOUT`."""
SENDING = 8
"""Reports sent to Redis at once (the rest of `CONNECTIONS` is left to `admit`)."""
QUEUED = 100_000
"""Most reports kept while Redis cannot take them; the oldest go first past it."""
FLUSH = 2.0
"""Most seconds `aclose` waits for the reports still queued."""

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
"""

_FREE = """
local token = ARGV[1]
local held = redis.call('ZREM', KEYS[2], token) == 1
redis.call('ZREM', KEYS[3], token)
local probe = redis.call('HGET', KEYS[1], 'probe')
local was_probe = probe == token
if was_probe then redis.call('HDEL', KEYS[1], 'probe', 'probe_until') end
"""

_ADMIT = (
    _PRELUDE
    + """
local limit, last_resort, threshold = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local token, expiry = ARGV[4], now + tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'open_until', 'probe', 'probe_until', 'why',
  'rate_limited', 'last', 'answered', 'latency')
local latency = s[8] or ''
local probe = false
if s[1] then
  local left = tonumber(s[1]) - now
  local held = s[2] and tonumber(s[3]) > now
  if left > 0 or held then
    return {'cooling', tostring(left), s[4] or '', s[5] or '0', s[6] or '', latency}
  end
  probe = true
end
if limit >= 0 and redis.call('ZCARD', KEYS[2]) >= limit then
  return {'full', tostring(limit), latency}
end
local answered = s[7] == '1'
if not (probe or last_resort or answered) then
  local trials = redis.call('ZCARD', KEYS[3])
  if trials >= threshold then return {'unproven', tostring(trials), latency} end
end
if probe then redis.call('HSET', KEYS[1], 'probe', token, 'probe_until', expiry) end
redis.call('ZADD', KEYS[2], expiry, token)
if not answered then redis.call('ZADD', KEYS[3], expiry, token) end
return {'ok', probe and '1' or '0', latency}
"""
)

_FIRST_CHUNK = """
local old = tonumber(redis.call('HGET', KEYS[1], 'latency') or '')
local seconds = tonumber(ARGV[1])
local new = seconds
if old then new = old + tonumber(ARGV[2]) * (seconds - old) end
redis.call('HSET', KEYS[1], 'latency', tostring(new), 'answered', '1')
redis.call('DEL', KEYS[3])
return tostring(new)
"""

_SUCCESS = (
    _FREE
    + """
redis.call('HSET', KEYS[1], 'failures', 0, 'opened', 0, 'answered', '1')
redis.call('HDEL', KEYS[1], 'open_until', 'why', 'last', 'rate_limited', 'probe', 'probe_until')
redis.call('DEL', KEYS[3])
return 1
"""
)

_FAILURE = (
    _PRELUDE
    + _FREE
    + """
if not held then return -1 end
local retry_after, reason, threshold = ARGV[2], ARGV[3], tonumber(ARGV[4])
local cooldown, max_cooldown, max_retry_after = tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'answered', '0')
if reason ~= '' then redis.call('HSET', KEYS[1], 'last', reason) end
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '')
if retry_after ~= '' then
  local wait = math.min(math.max(tonumber(retry_after), 0), max_retry_after)
  local until_ = math.max(now + wait, open_until or now)
  redis.call('HSET', KEYS[1], 'open_until', until_, 'why', ARGV[8], 'rate_limited', '1')
elseif was_probe or (not open_until and failures >= threshold) then
  local opened = redis.call('HINCRBY', KEYS[1], 'opened', 1)
  local wait = math.min(cooldown * 2 ^ (opened - 1), max_cooldown)
  redis.call('HSET', KEYS[1], 'open_until', now + wait, 'rate_limited', '0',
    'why', 'circuit open after ' .. failures .. ' consecutive failures')
end
return failures
"""
)

_RELEASE = _FREE + "return 1\n"

_REFRESH = (
    _PRELUDE
    + """
local expiry = now + tonumber(ARGV[1])
local probe = redis.call('HGET', KEYS[1], 'probe')
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[2], 'XX', expiry, ARGV[i])
  redis.call('ZADD', KEYS[3], 'XX', expiry, ARGV[i])
  if probe == ARGV[i] then redis.call('HSET', KEYS[1], 'probe_until', expiry) end
end
return 1
"""
)

_SNAPSHOT = (
    _PRELUDE
    + """
local s = redis.call('HMGET', KEYS[1], 'open_until', 'why', 'last', 'latency', 'failures')
local left = ''
if s[1] then left = tostring(tonumber(s[1]) - now) end
return {left, s[2] or '', s[3] or '', s[4] or '', s[5] or '0',
  tostring(redis.call('ZCARD', KEYS[2]))}
"""
)


class RedisHealthStore:
    """A `HealthStore` in Redis at `url`, under `prefix`, shared by every process using both.

    The breaker settings are those of `MemoryHealthStore` (which is also this process's
    fallback while Redis cannot be reached); every process sharing a prefix should use the
    same ones. `ticket_ttl`: seconds a ticket not reported holds its place; `timeout`: seconds
    an operation may wait for Redis.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "providerhub:health:",
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 300.0,
        max_retry_after: float = 600.0,
        latency_weight: float = 0.3,
        ticket_ttl: float = TICKET_TTL,
        timeout: float = TIMEOUT,
    ) -> None:
        self.local = MemoryHealthStore(
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            max_cooldown=max_cooldown,
            max_retry_after=max_retry_after,
            latency_weight=latency_weight,
        )
        """This process's own view, served while Redis is down."""
        self.url = url
        self.prefix = prefix
        self.ticket_ttl = ticket_ttl
        self.timeout = timeout
        self._client: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, Any] = {}
        self._latency: dict[str, float] = {}
        self._retry_at = 0.0
        self._down = False
        self._overflowed = False
        self._queue: deque[tuple[str, str, list[Any]]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._held: dict[str, set[str]] = {}
        """Tokens given and not yet reported, by provider: what the heartbeat refreshes."""
        self._heartbeat: asyncio.Task[None] | None = None
        self._tokens = itertools.count()
        self._process = f"{os.getpid()}-{os.urandom(4).hex()}"

    def __repr__(self) -> str:
        return f"RedisHealthStore(prefix={self.prefix!r})"

    async def admit(
        self, provider: str, limit: int | None = None, last_resort: bool = False
    ) -> Ticket | Refusal:
        token = f"{self._process}-{next(self._tokens)}"
        local = self.local
        args = [
            -1 if limit is None else limit,
            "1" if last_resort else "0",
            local.failure_threshold,
            token,
            int(self.ticket_ttl * 1000),
        ]
        asked = time.monotonic() >= self._retry_at
        try:
            answered, reply = await self._call("admit", provider, args)
        except asyncio.CancelledError:
            if asked:  # Redis may have granted it all the same
                self._send("release", provider, [token])
            raise
        if not answered:
            if asked:
                self._send("release", provider, [token])
            return local.admit_now(provider, limit, last_resort)
        kind = reply[0]
        self._remember(provider, reply[-1])
        if kind == b"ok":
            self._hold(provider, token)
            return Ticket(provider, probe=reply[1] == b"1", token=token)
        if kind == b"cooling":
            left = float(reply[1]) / 1000
            return CoolingDownError(
                provider,
                reply[2].decode(),
                rate_limited=reply[3] == b"1",
                seconds_left=left if left > 0 else None,
                last_failure=reply[4].decode(),
            )
        return AtCapacityError(provider, int(reply[1]), unproven=kind == b"unproven")

    def first_chunk(self, provider: str, seconds: float) -> None:
        self.local.first_chunk(provider, seconds)
        self._send("first_chunk", provider, [repr(seconds), repr(self.local.latency_weight)])

    def success(self, ticket: Ticket) -> None:
        if not ticket.token:
            self.local.success(ticket)
        else:
            self._let_go(ticket)
            self._send("success", ticket.provider, [ticket.token])

    def failure(self, ticket: Ticket, retry_after: float | None = None, reason: str = "") -> None:
        if not ticket.token:
            self.local.failure(ticket, retry_after, reason)
            return
        self._let_go(ticket)
        local = self.local
        args = [
            ticket.token,
            "" if retry_after is None else repr(retry_after * 1000),
            reason,
            local.failure_threshold,
            repr(local.cooldown * 1000),
            repr(local.max_cooldown * 1000),
            repr(local.max_retry_after * 1000),
            f"rate limited, Retry-After {retry_after:g}s" if retry_after is not None else "",
        ]
        self._send("failure", ticket.provider, args)

    def release(self, ticket: Ticket) -> None:
        if not ticket.token:
            self.local.release(ticket)
        else:
            self._let_go(ticket)
            self._send("release", ticket.provider, [ticket.token])

    def latency(self, provider: str) -> float | None:
        return self._latency.get(provider, self.local.latency(provider))

    @property
    def shared(self) -> bool:
        """Whether the last operation reached Redis (else this process's own view answered)."""
        return not self._down

    async def snapshot(self, provider: str) -> ProviderHealth:
        answered, reply = await self._call("snapshot", provider, [])
        if not answered:
            return self.local.snapshot_now(provider)
        left = float(reply[0]) / 1000 if reply[0] else None
        latency = self._remember(provider, reply[3])
        return ProviderHealth(
            provider,
            circuit_state(left),
            left if left is not None and left > 0 else None,
            reply[1].decode() if left is not None else "",
            reply[2].decode(),
            latency,
            int(reply[5]),
            int(reply[4]),
        )

    async def aclose(self) -> None:
        """Send the reports still queued (for at most `FLUSH` seconds), then close the client."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        sender = self._sender
        if sender is not None and sender.get_loop() is asyncio.get_running_loop():
            try:
                await asyncio.wait_for(asyncio.shield(sender), FLUSH)
            except TimeoutError:
                sender.cancel()
                log.warning(
                    "health store: %d reports not sent to Redis %s", len(self._queue), self._where()
                )
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = self._loop = None

    def _remember(self, provider: str, latency: bytes) -> float | None:
        if latency:
            self._latency[provider] = float(latency)
        return self._latency.get(provider)

    def _hold(self, provider: str, token: str) -> None:
        """Keep `token` alive in Redis (the heartbeat runs while this process holds any)."""
        self._held.setdefault(provider, set()).add(token)
        loop, beat = asyncio.get_running_loop(), self._heartbeat
        if beat is None or beat.done() or beat.get_loop() is not loop:
            self._heartbeat = loop.create_task(self._beat())

    def _let_go(self, ticket: Ticket) -> None:
        tokens = self._held.get(ticket.provider)
        if tokens is not None:
            tokens.discard(ticket.token)
            if not tokens:
                del self._held[ticket.provider]

    async def _beat(self) -> None:
        """Every third of `ticket_ttl`, push the expiry of the tickets still held further."""
        try:
            while self._held:
                await asyncio.sleep(self.ticket_ttl / 3)
                ttl = int(self.ticket_ttl * 1000)
                await asyncio.gather(
                    *(
                        self._call("refresh", provider, [ttl, *tokens])
                        for provider, tokens in list(self._held.items())
                    )
                )
        finally:
            if self._heartbeat is asyncio.current_task():
                self._heartbeat = None

    def _send(self, name: str, provider: str, args: list[Any]) -> None:
        """Queue a report for the background sender (started when none is running)."""
        if len(self._queue) >= QUEUED:
            self._queue.popleft()
            if not self._overflowed:
                self._overflowed = True
                log.warning("health store: over %d reports waiting for Redis; dropping", QUEUED)
        self._queue.append((name, provider, args))
        loop, sender = asyncio.get_running_loop(), self._sender
        if sender is None or sender.done() or sender.get_loop() is not loop:
            self._sender = loop.create_task(self._drain())

    async def _drain(self) -> None:
        """Send the queued reports, `SENDING` at a time; those Redis could not take go back to
        the front of the queue, to be sent once it answers again."""
        try:
            while self._queue:
                wait = self._retry_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                queue = self._queue
                batch = [queue.popleft() for _ in range(min(len(queue), SENDING))]
                outcomes = await asyncio.gather(*(self._call(*report) for report in batch))
                kept = []
                for report, (answered, reply) in zip(batch, outcomes, strict=True):
                    if not answered:
                        kept.append(report)
                    elif report[0] == "first_chunk":
                        self._remember(report[1], reply)
                queue.extendleft(reversed(kept))
            self._overflowed = False
        finally:
            if self._sender is asyncio.current_task():
                self._sender = None

    async def _call(self, name: str, provider: str, args: list[Any]) -> tuple[bool, Any]:
        """Run script `name` for `provider`: whether Redis answered, and its reply. Not when
        Redis is being left alone, nor when it did not answer in time (it may still run the
        script, which is why the reports are safe to send again: a ticket's report counts
        once): then the outage is logged once and Redis left alone `BACKOFF` seconds."""
        now = time.monotonic()
        if now < self._retry_at:
            return False, None
        script = self._script(name)
        keys = [f"{self.prefix}{kind}:{provider}" for kind in ("state", "flight", "trials")]
        try:
            async with asyncio.timeout(self.timeout):
                reply = await script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._retry_at = time.monotonic() + BACKOFF
            if not self._down:
                self._down = True
                log.warning(
                    "health store: Redis %s did not answer (%s); serving from this process's "
                    "own view, trying again every %gs",
                    self._where(),
                    type(exc).__name__,
                    BACKOFF,
                )
            return False, None
        if self._down:
            self._down = False
            log.info("health store: Redis %s answers again; shared state resumed", self._where())
        return True, reply

    def _script(self, name: str) -> Any:
        """The registered script `name`, on a client of the running loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=CONNECTIONS,
                timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
            )
            self._client = aioredis.Redis.from_pool(pool)
            self._loop = loop
            self._scripts = {key: self._client.register_script(text) for key, text in _SCRIPTS}
        return self._scripts[name]

    def _where(self) -> str:
        """Host, port and database of the url (never its password)."""
        assert self._client is not None
        kwargs = self._client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


_SCRIPTS = (
    ("admit", _ADMIT),
    ("first_chunk", _FIRST_CHUNK),
    ("success", _SUCCESS),
    ("failure", _FAILURE),
    ("release", _RELEASE),
    ("snapshot", _SNAPSHOT),
    ("refresh", _REFRESH),
)
