"""The `HealthStore` several gateway processes share: the memory store's rules, kept in Redis.

Every process pointed at the same Redis and `prefix` sees one circuit, cooldown, set of requests
in flight, trial count and latency estimate per provider. Each operation is one Lua script
(`redis_scripts`) run atomically by Redis (never a read-modify-write from Python), so two
processes never both win the half-open probe and no counter loses an update. Times are Redis's
own clock (`TIME`), so the processes' clocks need not agree.

Keys, per provider NAME: `{prefix}state:NAME` (a hash: failures, times opened, open until, why,
last failure, the probe's token, answered, latency), `{prefix}flight:NAME` and
`{prefix}trials:NAME` (sorted sets of ticket tokens scored by their expiry). A ticket expires
`TICKET_TTL` seconds after `admit` unless its process, still alive, refreshes it (every third of
that, while it holds tickets), so a process that dies holding tickets frees their places (and
the probe) within `TICKET_TTL`, and a long stream of a live one keeps counting.

Each event loop has one line to Redis (`redis_line.Line`): one connection and one queue of
operations, sent in order, everything queued sent together in one pipeline (up to
`redis_line.BATCH` per round trip). So a process's report always reaches Redis before its later
`admit` (a request that has just ended never holds its place against the next one), and a
thousand reports cost a few round trips, not a thousand. Only `admit` and `snapshot` wait for
their answer, at most `timeout`; the reports are queued and the caller goes on. A report Redis
could not take is kept and sent once it answers again (at most `redis_line.QUEUED` per line;
past that the oldest are dropped, with one warning), so a slow moment loses no outcome and frees
every place; a ticket's report counts once, however often it is sent (`redis_scripts`). An
`admit` given up on (timed out, cancelled) may still be granted by Redis: its token is released.
An operation Redis refuses for good (a key of another type under the prefix) is dropped with one
warning, not taken for an outage.

When Redis is unreachable, slow or errs, the process serves from its own `MemoryHealthStore`
(one warning per outage), tries Redis again `BACKOFF` seconds later, and says so (one info line)
once it answers again; the shared state then resumes from what Redis holds. A ticket is reported
to the store that gave it. A line is closed with its loop (the loop's shutdown, as the sync
bridge and `asyncio.run` do it, first sends what is queued, for at most `redis_line.FLUSH`
seconds, and not at all while Redis is being left alone), or by `aclose`; what is reported while
it closes goes out with it. A report made after that, on a loop that is ending (an abandoned
stream's cleanup run by the loop's shutdown), may be lost: its ticket's place frees after
`TICKET_TTL`.

redis-py is imported here only (`pip install 'providerhub[redis]'`); importing providerhub does
not import this module.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from typing import Any

import redis.asyncio as aioredis

from ..config.spec import HealthSettings
from ..errors import AtCapacityError, CoolingDownError
from ..pool import Pool
from ..redaction import redact
from .health import MemoryHealthStore, ProviderHealth, Refusal, Ticket, circuit_state
from .redis_line import Line

__all__ = ["BACKOFF", "TICKET_TTL", "TIMEOUT", "RedisHealthStore"]

log = logging.getLogger("providerhub.routing")

TIMEOUT = HealthSettings().timeout
"""Seconds an operation may wait for Redis before this process falls back to its own view
(`[health] timeout`, 75 ms)."""
BACKOFF = 1.0
"""Seconds after a failed operation before Redis is tried again."""
TICKET_TTL = 30.0
"""Seconds a ticket holds its place (and the probe) unless reported or refreshed first."""
_KINDS = ("state", "flight", "trials")
"""A provider's keys, after the prefix: the scripts' KEYS[1], KEYS[2] and KEYS[3]."""


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
        self._where = _where(url)
        self._pool = Pool(1)
        """Closes each loop's line with its loop."""
        self._lines: dict[asyncio.AbstractEventLoop, Line] = {}
        self._mutex = threading.Lock()
        """Guards `_lines` and the lines' held tokens (loops in several threads may share the
        store)."""
        self._latency: dict[str, float] = {}
        self._retry_at = 0.0
        self._down = False
        self._refusals: set[tuple[str, str]] = set()
        self._tokens = itertools.count()
        self._process = f"{os.getpid()}-{os.urandom(4).hex()}"

    def __repr__(self) -> str:
        return f"RedisHealthStore(prefix={self.prefix!r})"

    async def admit(
        self, provider: str, limit: int | None = None, last_resort: bool = False
    ) -> Ticket | Refusal:
        local = self.local
        if time.monotonic() < self._retry_at:
            return local.admit_now(provider, limit, last_resort)
        token = f"{self._process}-{next(self._tokens)}"
        args = [
            -1 if limit is None else limit,
            "1" if last_resort else "0",
            local.failure_threshold,
            token,
            int(self.ticket_ttl * 1000),
        ]
        line = self._line()
        try:
            reply = await line.ask("admit", provider, args)
        except asyncio.CancelledError:
            line.send("release", provider, [token])  # Redis may grant it all the same
            raise
        if reply is None:
            line.send("release", provider, [token])
            return local.admit_now(provider, limit, last_resort)
        kind = reply[0]
        self._remember(provider, reply[-1])
        if kind == b"ok":
            self._line().hold(provider, token)
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
        if time.monotonic() >= self._retry_at:  # a sample, not an outcome: not kept for later
            weight = self.local.latency_weight
            self._line().send("first_chunk", provider, [repr(seconds), repr(weight)])

    def success(self, ticket: Ticket) -> None:
        if not ticket.token:
            self.local.success(ticket)
        else:
            self._report("success", ticket, [ticket.token])

    def failure(self, ticket: Ticket, retry_after: float | None = None, reason: str = "") -> None:
        if not ticket.token:
            self.local.failure(ticket, retry_after, reason)
            return
        local = self.local
        args = [
            ticket.token,
            "" if retry_after is None else repr(retry_after * 1000),
            reason.encode("utf-8", "replace").decode("utf-8"),  # a lone surrogate would not go
            local.failure_threshold,
            repr(local.cooldown * 1000),
            repr(local.max_cooldown * 1000),
            repr(local.max_retry_after * 1000),
            f"rate limited, Retry-After {retry_after:g}s" if retry_after is not None else "",
        ]
        self._report("failure", ticket, args)

    def release(self, ticket: Ticket) -> None:
        if not ticket.token:
            self.local.release(ticket)
        else:
            self._report("release", ticket, [ticket.token])

    def latency(self, provider: str) -> float | None:
        return self._latency.get(provider, self.local.latency(provider))

    @property
    def shared(self) -> bool:
        """Whether the last operation reached Redis (else this process's own view answered)."""
        return not self._down

    async def snapshot(self, provider: str) -> ProviderHealth:
        reply = None
        if time.monotonic() >= self._retry_at:
            reply = await self._line().ask("snapshot", provider, [])
        if reply is None:
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

    async def flush(self) -> None:
        """Wait until the reports queued on the running loop are sent (or, Redis not
        answering, kept for later): at most `redis_line.FLUSH` seconds."""
        line = self._lines.get(asyncio.get_running_loop())
        if line is not None:
            await line.flush()

    async def aclose(self) -> None:
        """Send the reports still queued on the running loop (for at most `redis_line.FLUSH`
        seconds), then close its connection."""
        line = self._lines.get(asyncio.get_running_loop())
        if line is not None:
            await line.close()

    def _line(self) -> Line:
        """The running loop's line (made at its first operation; one being closed stays the
        loop's until it is closed, so what is reported meanwhile goes out with it, in order)."""
        loop = asyncio.get_running_loop()
        line = self._lines.get(loop)
        if line is None:
            with self._mutex:
                for closed in [other for other in list(self._lines) if other.is_closed()]:
                    del self._lines[closed]  # closed without a shutdown: nothing left to send
                line = self._lines.setdefault(loop, Line(self, loop))
        return line

    def _report(self, name: str, ticket: Ticket, args: list[Any]) -> None:
        with self._mutex:  # the ticket may be held by another thread's loop
            for line in list(self._lines.values()):
                line.let_go(ticket)
        self._line().send(name, ticket.provider, args)

    def _remember(self, provider: str, latency: bytes) -> float | None:
        if latency:
            self._latency[provider] = float(latency)
        return self._latency.get(provider)

    def _keys(self, provider: str) -> tuple[str, str, str]:
        state, flight, trials = (f"{self.prefix}{kind}:{provider}" for kind in _KINDS)
        return state, flight, trials

    def _lost(self, why: str) -> None:
        """Redis did not answer: leave it alone `BACKOFF` seconds; one warning per outage."""
        self._retry_at = time.monotonic() + BACKOFF
        if not self._down:
            self._down = True
            log.warning(
                "health store: Redis %s did not answer (%s); serving from this process's own "
                "view, trying again every %gs",
                self._where,
                why,
                BACKOFF,
            )

    def _refused(self, what: str, error: Exception) -> None:
        """Redis refused an operation it will always refuse (a key of another type under the
        prefix, say): it is dropped, with one warning per kind of operation and error."""
        kind = (what, type(error).__name__)
        if kind not in self._refusals:
            self._refusals.add(kind)
            log.warning(
                "health store: Redis %s refused %s (%s: %s); dropped, not sent again",
                self._where,
                what,
                type(error).__name__,
                redact(str(error)),
            )

    def _found(self) -> None:
        if self._down:
            self._down = False
            log.info("health store: Redis %s answers again; shared state resumed", self._where)


def _where(url: str) -> str:
    """Host, port and database of `url` (never its password)."""
    kwargs = aioredis.ConnectionPool.from_url(url).connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
