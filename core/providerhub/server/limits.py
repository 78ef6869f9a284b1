"""What bounds the requests in flight: how many at once, how many body bytes, and the drain that
gives them exactly the shutdown grace.

A request over `max_concurrent_requests`, or whose body would take the bytes held by requests
in flight past `MAX_BODIES`, is refused at once with a 429 and `Retry-After` (nothing is read or
queued, so a burst costs no memory). A chunked body, of unknown size, counts as `MAX_BODY`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .wire import RequestError, error_event

MAX_BODY = 16 * 1024 * 1024
"""The largest request body (aiohttp's client_max_size): a bigger one is a 413."""
MAX_BODIES = 4 * MAX_BODY
"""Body bytes the requests in flight may hold together (their JSON, decoded, is a few times as
much): 20 concurrent 15 MB bodies must not take the process to gigabytes."""
RETRY_AFTER = 1
"""Seconds a refused client is told to wait (`Retry-After`)."""
SHUTDOWN_CODE = "server_shutdown"
CUT_LIMIT = 1.0
"""Seconds answers cut at the end of the grace get to send their last event and finish."""


class RequestTimeout(RequestError, TimeoutError):
    """A request not received whole within `[server] request_timeout` (a 408; aiohttp reads
    it as a timeout too, so the unread rest of the body is dropped without a traceback)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request was not received within {seconds:g} s ([server] request_timeout)",
            code="request_timeout",
            headers={"Connection": "close"},
        )


class Admission:
    """Counts the requests in flight and the body bytes they hold; refuses what would exceed."""

    def __init__(self, max_requests: int, max_body_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        self.requests = 0
        self.body_bytes = 0

    @asynccontextmanager
    async def admit(self, body_bytes: int) -> AsyncIterator[None]:
        """Hold a slot and `body_bytes` of the budget for the block; a 429 when either is full."""
        if self.requests >= self.max_requests:
            raise _busy(f"the gateway is answering {self.max_requests} requests already")
        if self.body_bytes + body_bytes > self.max_body_bytes:
            raise _busy(f"request bodies in flight would exceed {self.max_body_bytes // 2**20} MiB")
        self.requests += 1
        self.body_bytes += body_bytes
        try:
            yield
        finally:
            self.requests -= 1
            self.body_bytes -= body_bytes


def _busy(why: str) -> RequestError:
    return RequestError(
        429,
        f"{why}; retry in {RETRY_AFTER} s",
        type="rate_limit_error",
        code="server_busy",
        headers={"Retry-After": str(RETRY_AFTER)},
    )


class ShutDown(RequestError):
    """An answer cut because the shutdown grace ran out (a 503 when nothing was sent yet)."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "the gateway shut down before the answer was complete; retry",
            type="server_error",
            code=SHUTDOWN_CODE,
            headers={"Connection": "close"},
        )

    def event(self) -> bytes:
        """The SSE error event ending a stream the grace cut (no `[DONE]` follows)."""
        return error_event(self.message, SHUTDOWN_CODE, self.type)


class Drain:
    """The answers in flight, so a stop can wait for them exactly the grace, then cut them.

    Each answer runs inside `scope()`; `close(grace)` waits until none is open or `grace`
    seconds have passed, then expires every open scope (and any opened later), which cancels
    its task and raises `ShutDown` where the scope ends.
    """

    def __init__(self) -> None:
        self._open: set[asyncio.Timeout] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._cut = False

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """Run the block as an answer in flight; ShutDown when the grace cut it."""
        timeout = asyncio.timeout(0 if self._cut else None)
        self._open.add(timeout)
        self._idle.clear()
        try:
            async with timeout:
                yield
        except TimeoutError:
            if timeout.expired():
                raise ShutDown from None
            raise
        finally:
            self._open.discard(timeout)
            if not self._open:
                self._idle.set()

    async def close(self, grace: float) -> None:
        """Wait up to `grace` seconds for the answers in flight, then cut the rest and give
        them `CUT_LIMIT` seconds to end."""
        if await self._settled(grace):
            return
        self._cut = True
        now = asyncio.get_running_loop().time()
        for timeout in self._open:
            timeout.reschedule(now)
        await self._settled(CUT_LIMIT)

    async def _settled(self, seconds: float) -> bool:
        """Whether no answer is in flight within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
