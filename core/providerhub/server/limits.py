"""What bounds the requests in flight: how many at once, the memory their bodies take, clients
that stop reading, and the drain that gives the answers exactly the shutdown grace.

A request over `max_concurrent_requests` is refused at once with a 429 and `Retry-After`
(nothing is read or queued, so a burst costs no memory). A body is charged as it arrives, chunk
by chunk, at what it will cost decoded (`BYTE_COST` per byte plus `NODE_COST` per JSON
structural character), and holds that until its answer ends: the moment the charges of the
requests in flight would pass `MAX_BODIES` it is a 429, or a 413 when it alone cannot fit. So a
slow body holds only what it sent, and no shape of JSON decodes past the budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from .wire import RequestError, error_event

MAX_BODY = 16 * 1024 * 1024
"""The largest request body (aiohttp's client_max_size): a bigger one is a 413."""
MAX_BODIES = 4 * MAX_BODY
"""Bytes the bodies of the requests in flight may cost together, decoded (`BYTE_COST`,
`NODE_COST`): 20 concurrent 15 MB bodies of any shape must not take the process to gigabytes."""
BYTE_COST = 3
"""Bytes charged per body byte: the raw body, plus its strings decoded (their peak while the
JSON decoder builds them is twice their size)."""
NODE_COST = 160
"""Bytes charged per `{`, `[` or `,` of a body (one per JSON object, array or element): the most
memory per node measured over the shapes a body can take (many small messages 151, content
parts 109, ints 92, `{}` 66, `[]` 62 bytes, decoded and parsed, by tracemalloc)."""
WRITE_STALL = 30.0
"""Seconds a stream's client may leave written bytes unread before the connection is aborted."""
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
    """Counts the requests in flight and what their bodies cost; refuses what would exceed."""

    def __init__(self, max_requests: int, max_body_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        self.requests = 0
        self.body_bytes = 0

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[Held]:
        """Hold a slot for the block (a 429 when all are taken), and what its body is charged."""
        if self.requests >= self.max_requests:
            raise _busy(f"the gateway is answering {self.max_requests} requests already")
        self.requests += 1
        held = Held(self)
        try:
            yield held
        finally:
            self.requests -= 1
            self.body_bytes -= held.cost


class Held:
    """What one admitted request holds of the body budget."""

    __slots__ = ("_admission", "cost")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.cost = 0

    async def read(self, chunks: AsyncIterable[bytes]) -> bytes:
        """The body, charging each chunk as it arrives: a 413 past `MAX_BODY` bytes or when it
        alone would cost more than the budget, a 429 when the requests in flight would."""
        parts: list[bytes] = []
        size = 0
        budget = self._admission.max_body_bytes
        limit = f"{budget // 2**20} MiB"
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_BODY:
                raise RequestError(
                    413,
                    f"the request body is over {MAX_BODY // 2**20} MiB",
                    code="body_too_large",
                    headers=_UNREAD,
                )
            nodes = chunk.count(b"{") + chunk.count(b"[") + chunk.count(b",")
            cost = len(chunk) * BYTE_COST + nodes * NODE_COST
            if self.cost + cost > budget:
                raise RequestError(
                    413,
                    f"the request body would take more than {limit} of memory decoded "
                    f"({BYTE_COST} bytes per byte and {NODE_COST} per JSON object, array or "
                    "element); send fewer or shorter messages, content parts or parameter items",
                    code="body_too_large",
                    headers=_UNREAD,
                )
            if self._admission.body_bytes + cost > budget:
                raise _busy(f"request bodies in flight would exceed {limit}", _UNREAD)
            self.cost += cost
            self._admission.body_bytes += cost
            parts.append(chunk)
        return b"".join(parts)


_UNREAD = {"Connection": "close"}
"""A refusal with the rest of its body unread ends the connection (aiohttp discards the rest)."""


def _busy(why: str, headers: dict[str, str] | None = None) -> RequestError:
    return RequestError(
        429,
        f"{why}; retry in {RETRY_AFTER} s",
        type="rate_limit_error",
        code="server_busy",
        headers={"Retry-After": str(RETRY_AFTER), **(headers or {})},
    )


class Stalls:
    """Streams whose client stopped reading: a watched connection whose unsent bytes stay the
    same, nonzero, for `WRITE_STALL` seconds is aborted (its handler is cancelled, which closes
    the upstream and frees the slot; the access line says 499).

    Nothing runs per write: one timer, armed while a stream is watched, looks at each
    connection's write buffer a few times per `WRITE_STALL`.
    """

    def __init__(self) -> None:
        self._watched: dict[asyncio.WriteTransport, tuple[int, float]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @contextmanager
    def watch(self, transport: asyncio.WriteTransport | None) -> Iterator[None]:
        """Watch `transport` (None: the client is gone already) for the block."""
        if transport is not None:
            self._watched[transport] = (0, 0.0)
            if self._timer is None:
                self._arm()
        try:
            yield
        finally:
            if transport is not None:
                self._watched.pop(transport, None)
                if not self._watched and self._timer is not None:
                    self._timer.cancel()
                    self._timer = None

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(WRITE_STALL / 4, self._check)

    def _check(self) -> None:
        now = asyncio.get_running_loop().time()
        for transport, (before, since) in list(self._watched.items()):
            unsent = transport.get_write_buffer_size()
            if unsent == 0 or unsent != before:
                self._watched[transport] = (unsent, now)
            elif now - since >= WRITE_STALL:
                del self._watched[transport]
                transport.abort()
        self._arm()


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
