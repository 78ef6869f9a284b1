"""Keep-alive connection pools: what is open on each event loop, and closing it.

A `Pool` belongs to one provider instance (an endpoint provider makes its own, bounded by its
`max_connections` option; calls that bring none share `DEFAULT_POOL`). It holds one HTTP
session per event loop, because a connection belongs to the loop that opened it; `http.request`
makes the session at the first request on a loop and reuses its connections after that.

Nothing stays open past its loop: the first session on a loop registers one async generator
with that loop, which asyncio's shutdown (`loop.shutdown_asyncgens()`, run by `asyncio.run`,
`asyncio.Runner` and the sync bridge) closes, closing every pool's session on that loop.
`close_all()` does the same at once (the gateway's cleanup does, and so does the test suite
between tests); `Pool.close()` closes one pool's. `open_requests()` counts requests whose
answer is still open, for leak checks.

This module does not import aiohttp (a provider's constructor makes its pool; listing providers
never sends a request): the sessions are made by `providerhub.http`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Protocol

__all__ = ["DEFAULT_POOL", "MAX_CONNECTIONS", "Pool", "Session", "close_all", "open_requests"]

MAX_CONNECTIONS = 1000
"""Default of `max_connections`: connections one pool keeps open to one host (per loop)."""


class Session(Protocol):
    """What a pool needs of a session: to close it (an aiohttp.ClientSession)."""

    async def close(self) -> None: ...


class Pool:
    """One provider's keep-alive connections: a session per event loop, at most
    `max_connections` connections to one host at once (a request beyond waits for one to come
    free, within its connect timeout)."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS) -> None:
        self.max_connections = max_connections
        self.requests = 0
        """Requests made through this pool whose answer is still open (on any loop)."""
        self._sessions: dict[asyncio.AbstractEventLoop, Session] = {}
        self._counting = threading.Lock()  # loops in several threads may share the pool
        _POOLS.add(self)

    def __repr__(self) -> str:
        return f"Pool(max_connections={self.max_connections})"

    def began(self) -> None:
        """A request's answer opened (`http.request` counts them)."""
        with self._counting:
            self.requests += 1

    def ended(self) -> None:
        """A request's answer closed."""
        with self._counting:
            self.requests -= 1

    def get(self) -> Session | None:
        """The running loop's session, or None before the first request on it."""
        return self._sessions.get(asyncio.get_running_loop())

    async def put(self, session: Session) -> None:
        """Keep `session` as the running loop's, closed when the loop shuts down."""
        loop = asyncio.get_running_loop()
        held = _LOOPS.get(loop)
        if held is None:
            _forget_closed_loops()
            held = _LOOPS[loop] = _Loop()
            closer = held.closer = _close_at_shutdown(loop)
            await anext(closer)  # registers it with the loop: shutdown_asyncgens closes it
        held.sessions.append((self, session))
        self._sessions[loop] = session

    async def close(self) -> None:
        """Close this pool's session on the running loop (the next request opens a new one)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        held = _LOOPS.get(loop)
        if session is None or held is None:
            return
        held.sessions = [(pool, kept) for pool, kept in held.sessions if pool is not self]
        await session.close()


class _Loop:
    """What is open on one loop: each pool's session, and the generator that closes them."""

    __slots__ = ("closer", "sessions")

    def __init__(self) -> None:
        self.sessions: list[tuple[Pool, Session]] = []
        self.closer: AsyncGenerator[None, None] | None = None


_LOOPS: dict[asyncio.AbstractEventLoop, _Loop] = {}
_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()
DEFAULT_POOL = Pool()
"""The pool of calls that bring none (a provider that is a class, a plugin's own request)."""


async def _close_at_shutdown(loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    """Parked at its yield until the loop's shutdown (or `close_all`) closes it."""
    try:
        yield
    finally:
        held = _LOOPS.pop(loop, None)
        if held is not None:
            for pool, _ in held.sessions:
                pool._sessions.pop(loop, None)
            for _, session in held.sessions:
                await session.close()


async def close_all() -> None:
    """Close every pool's session on the running loop."""
    held = _LOOPS.get(asyncio.get_running_loop())
    if held is not None and held.closer is not None:
        await held.closer.aclose()


def open_requests() -> int:
    """Requests made through any pool whose answer is still open."""
    return sum(pool.requests for pool in list(_POOLS))


def _forget_closed_loops() -> None:
    """Drop what loops closed without shutting down left (their sessions cannot be closed)."""
    for loop in [loop for loop in list(_LOOPS) if loop.is_closed()]:
        held = _LOOPS.pop(loop, None)
        for pool, _ in held.sessions if held is not None else ():
            pool._sessions.pop(loop, None)
