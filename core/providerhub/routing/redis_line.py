"""One event loop's line to Redis, for `redis_health.RedisHealthStore`: one connection, one
queue of operations sent in order, everything queued at once in one pipeline per round trip.

Order is the point: a process's report reaches Redis before the same loop's next `admit`, so a
place just freed is never refused; one round trip per batch is what keeps thousands of reports a
second cheap. Questions (`ask`: admit, snapshot) wait for their reply, at most the store's
`timeout`; reports (`send`) are queued and linger up to `LINGER` for a question to take them
along. What Redis could not take goes back to the front of the queue; what it refuses for good
is dropped. The line registers with the store's `Pool`, so it closes with its loop, sending what
is queued first. Whether Redis is reachable is the store's to know (`_lost`, `_found`): a line
only reports what its round trips met.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, TypeAlias

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from .health import Ticket
from .redis_scripts import SCRIPTS, SHAS

if TYPE_CHECKING:
    from .redis_health import RedisHealthStore

__all__ = ["BATCH", "FLUSH", "LINGER", "QUEUED", "Line"]

log = logging.getLogger("providerhub.routing")

BATCH = 256
"""Most operations sent in one round trip."""
QUEUED = 100_000
"""Most reports a line keeps while Redis cannot take them; the oldest go first past it."""
FLUSH = 2.0
"""Most seconds closing a line waits for the reports still queued."""
LINGER = 0.005
"""Seconds a report waits for company: a question asked meanwhile (often the next request's
`admit`) takes it along in its own round trip, after it."""

_AGAIN, _REFUSED = object(), object()
"""What became of an operation Redis did not answer: to send again, or never to."""
_OUTAGE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,
)
"""Errors of Redis as a whole, not of one operation: wait for it, then send again (redis-py's
ConnectionError includes BusyLoadingError; `BUSY`, another client's long script, comes as a
plain ResponseError: `_outage` knows it)."""


def _outage(error: object) -> bool:
    """Whether `error` (a reply) says Redis as a whole cannot answer now."""
    return isinstance(error, _OUTAGE) or (
        isinstance(error, redis_errors.ResponseError) and str(error).startswith("BUSY")
    )


_Op: TypeAlias = tuple[str, str, list[Any], "asyncio.Future[Any] | None"]
"""A script's name, the provider, its arguments, and the future of whoever waits for its reply
(None for a report)."""


class Line:
    """One event loop's line to Redis: its connection, the operations queued for it (sent in
    order), the task sending them, and the tokens its loop holds (which its heartbeat keeps
    alive)."""

    def __init__(self, store: RedisHealthStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self.client = aioredis.Redis.from_url(
            store.url,
            socket_connect_timeout=store.timeout,
            socket_timeout=store.timeout,
            # A connection Redis closed (a restart) is tried once more; the rest is ours to handle.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,)),
        )
        self.queue: deque[_Op] = deque()
        self.sender: asyncio.Task[None] | None = None
        self.linger: asyncio.TimerHandle | None = None
        """Starts the sender `LINGER` seconds after a report, unless a question does first."""
        self.held: dict[str, set[str]] = {}
        self.beat: asyncio.Task[None] | None = None
        self.loaded = False
        """Whether this connection's Redis has been given the scripts."""
        self.registered = False
        self.overflowed = False
        self.closing = False

    def send(self, name: str, provider: str, args: list[Any]) -> None:
        """Queue a report."""
        queue = self.queue
        if len(queue) >= QUEUED:
            queue.popleft()
            if not self.overflowed:
                self.overflowed = True
                log.warning("health store: over %d reports waiting for Redis; dropping", QUEUED)
        queue.append((name, provider, args, None))
        if not self.registered:
            self._start()
        elif self.linger is None and (self.sender is None or self.sender.done()):
            self.linger = self.loop.call_later(LINGER, self._start)

    async def ask(self, name: str, provider: str, args: list[Any]) -> Any:
        """Queue a question and wait for its reply: None if Redis did not give it in time."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self.queue.append((name, provider, args, future))
        self._start()
        try:
            async with asyncio.timeout(self.store.timeout):
                return await future
        except TimeoutError:
            return None

    def hold(self, provider: str, token: str) -> None:
        """Keep `token` alive in Redis (the heartbeat runs while this line holds any, until
        the line closes)."""
        with self.store._mutex:
            self.held.setdefault(provider, set()).add(token)
        if not self.closing and (self.beat is None or self.beat.done()):
            self.beat = self.loop.create_task(self._beat())

    def let_go(self, ticket: Ticket) -> None:
        """Stop refreshing `ticket`'s token (the caller holds the store's mutex)."""
        tokens = self.held.get(ticket.provider)
        if tokens is not None:
            tokens.discard(ticket.token)
            if not tokens:
                self.held.pop(ticket.provider, None)

    async def flush(self, patient: bool = True) -> None:
        """Wait (at most `FLUSH` seconds) for the queue to be sent or kept; not `patient`:
        not past one attempt while Redis is left alone (closing then drops what is left)."""
        try:
            async with asyncio.timeout(FLUSH):
                while self.queue and (patient or time.monotonic() >= self.store._retry_at):
                    self._start()  # one sender at a time, so the order holds
                    assert self.sender is not None
                    await asyncio.shield(self.sender)
        except TimeoutError:
            pass
        if self.queue and not patient:
            log.warning(
                "health store: %d reports not sent to Redis %s", len(self.queue), self.store._where
            )

    async def close(self) -> None:
        """Flush, then close the connection (also when the loop shuts down: the `Pool` calls it
        then). Once only; the line stays its loop's until it is closed."""
        if self.closing:
            return
        self.closing = True
        try:
            if self.beat is not None:
                self.beat.cancel()
            await asyncio.sleep(0)  # what else closes with the loop may report first
            await self.flush(patient=False)
        finally:
            with self.store._mutex:
                if self.store._lines.get(self.loop) is self:
                    del self.store._lines[self.loop]
            sender = self.sender
            if sender is not None and not sender.done():
                sender.cancel()
                await asyncio.wait({sender})  # else the loop may close with it pending
            if self.linger is not None:
                self.linger.cancel()
            self._unanswer()
            await self.client.aclose()

    def _start(self) -> None:
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        sender = self.sender
        if sender is None or sender.done():
            self.sender = self.loop.create_task(self._run())

    async def _run(self) -> None:
        if not self.registered and not self.closing:  # closed with the loop from now on
            self.registered = True
            await self.store._pool.put(self)
        await self._send_all()

    async def _send_all(self) -> None:
        """Send the queue, `BATCH` at a time, in order; what Redis could not take goes back to
        the front. While Redis is left alone the questions are answered with None at once and
        the reports wait."""
        queue, store = self.queue, self.store
        while queue:
            wait = store._retry_at - time.monotonic()
            if wait > 0:
                self._unanswer()
                if self.closing:  # what is left is dropped: closing waits for no outage
                    return
                await asyncio.sleep(wait)
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), BATCH))]
            batch = [op for op in batch if op[3] is None or not op[3].done()]  # not given up
            try:
                replies = await self._execute(batch)
            except asyncio.CancelledError:
                queue.extendleft(reversed(batch))
                raise
            kept = []
            for op, reply in zip(batch, replies, strict=True):
                future = op[3]
                if reply is _AGAIN:
                    kept.append(op)
                elif future is not None:
                    if not future.done():
                        future.set_result(None if reply is _REFUSED else reply)
                elif op[0] == "first_chunk" and reply is not _REFUSED:
                    store._remember(op[1], reply)
            queue.extendleft(reversed(kept))
        self.overflowed = False

    async def _execute(self, batch: list[_Op]) -> list[Any]:
        """One round trip: each operation's reply, `_AGAIN` for one to send again (Redis did
        not run it, or not for sure: unreachable, slow, restarted, read-only, out of memory),
        `_REFUSED` for one Redis will never take (its error logged once); the scripts loaded
        first if this connection's Redis may not have them."""
        store = self.store
        if not batch:
            return []
        loading = not self.loaded
        try:
            pipe = self.client.pipeline(transaction=False)
            if loading:
                for text in SCRIPTS.values():
                    pipe.script_load(text)
            for name, provider, args, _ in batch:
                pipe.evalsha(SHAS[name], 3, *store._keys(provider), *args)
            async with asyncio.timeout(store.timeout):
                replies = (await pipe.execute(raise_on_error=False))[len(SCRIPTS) * loading :]
        except (RedisError, OSError, TimeoutError) as exc:
            store._lost(type(exc).__name__)
            return [_AGAIN] * len(batch)
        except Exception as exc:  # a bug, not an outage: never sent again, for ever
            store._refused("a batch", exc)
            return [_REFUSED] * len(batch)
        noscript = next((e for e in replies if isinstance(e, NoScriptError)), None)
        if noscript is not None and loading:  # loaded, and still missing: never will be
            store._refused("its scripts", noscript)
        elif noscript is not None:
            self.loaded = False  # Redis restarted, or its scripts were flushed: sent again
        elif loading:
            self.loaded = True
        outage = next((e for e in replies if _outage(e)), None)
        if outage is not None:
            store._lost(type(outage).__name__)
        else:
            store._found()
        verdicts = []
        for (name, *_), reply in zip(batch, replies, strict=True):
            if _outage(reply) or (isinstance(reply, NoScriptError) and not loading):
                reply = _AGAIN
            elif isinstance(reply, Exception):
                store._refused(name, reply)
                reply = _REFUSED
            verdicts.append(reply)
        return verdicts

    def _unanswer(self) -> None:
        """Answer the questions queued with None (their askers fall back); keep the reports."""
        queue = self.queue
        ops = list(queue)
        queue.clear()
        for name, provider, args, future in ops:
            if future is None:
                queue.append((name, provider, args, future))
            elif not future.done():
                future.set_result(None)

    async def _beat(self) -> None:
        """Every third of `ticket_ttl`, push the expiry of the tokens still held further."""
        ttl = self.store.ticket_ttl
        while self.held and not self.closing:
            await asyncio.sleep(ttl / 3)
            with self.store._mutex:
                held = [(provider, list(tokens)) for provider, tokens in self.held.items()]
            for provider, tokens in held:
                self.send("refresh", provider, [int(ttl * 1000), *tokens])
