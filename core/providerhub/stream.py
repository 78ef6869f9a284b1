"""The stream a chain returns, and one attempt at one provider (up to its first chunk).

`ChatStream` is what `FallbackChain.stream()` gives the caller: an async iterator of text chunks
that also says who is serving (`provider`) and what was tried (`attempts`). `Run` drives one
request until its first non-empty chunk in a task of its own, so several can race (hedging);
once one wins, the chain reads the rest of it in the consumer's task, with nothing in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Any

from .attempt import Attempt
from .errors import EmptyStreamError

__all__ = ["ChatStream"]

log = logging.getLogger("providerhub.routing")


class ChatStream:
    """Text chunks of one chat answer; `provider` and `attempts` say how it was obtained.

    Iterate it with `async for`. Stopping early (`break` then `aclose()`, `async with`, or
    cancelling the task) closes the upstream connection. `provider` is None until the first
    chunk arrives; after a hand-over (`on_interrupt="continue"`) it names the provider now
    serving. `attempts` grows while the chain works and is final once the stream ends.
    """

    __slots__ = ("_chunks", "attempts", "provider")

    def __init__(self, run: Callable[[ChatStream], AsyncGenerator[str, None]]) -> None:
        self.provider: str | None = None
        self.attempts: list[Attempt] = []
        self._chunks = run(self)

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> str:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and close any upstream connection it holds."""
        await self._chunks.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def text(self) -> str:
        """Read the rest of the stream and return it joined."""
        return "".join([chunk async for chunk in self])

    def __repr__(self) -> str:
        return f"<ChatStream provider={self.provider!r} attempts={len(self.attempts)}>"


class Run:
    """One request to one provider, driven in its own task until its first non-empty chunk."""

    __slots__ = ("attempt", "begins", "chunks", "first", "member", "started", "task", "tracked")

    def __init__(self, member: Any, attempt: Attempt, *, tracked: bool) -> None:
        self.member = member
        self.attempt = attempt
        self.tracked = tracked
        """Whether the chain reports this provider's outcome to the health store."""
        self.chunks: AsyncIterator[str] | None = None
        self.task: asyncio.Task[str] | None = None
        self.first = ""
        self.begins = 0.0
        """Loop time at which the request is sent (after any retry backoff)."""
        self.started = 0.0

    def start(self, open_stream: Callable[[], AsyncIterator[str]], delay: float = 0.0) -> None:
        """Send the request (after `delay` seconds) and wait for its first chunk in a task."""
        loop = asyncio.get_running_loop()
        self.begins = loop.time() + delay
        self.task = loop.create_task(self._first_chunk(open_stream, delay))

    async def _first_chunk(
        self, open_stream: Callable[[], AsyncIterator[str]], delay: float
    ) -> str:
        if delay > 0:
            await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        self.started = loop.time()
        self.chunks = open_stream()
        async for chunk in self.chunks:
            if chunk:
                self.first = chunk
                self.attempt.time_to_first_chunk = loop.time() - self.started
                return chunk
        raise EmptyStreamError(self.attempt.provider)

    def error(self) -> BaseException | None:
        """The failure of a finished first-chunk task, or None if it produced a chunk."""
        assert self.task is not None and self.task.done()
        if self.task.cancelled():
            return asyncio.CancelledError()
        return self.task.exception()

    def stop_clock(self) -> None:
        """Set the attempt's duration from the moment its request was sent."""
        if self.started:
            self.attempt.duration = asyncio.get_running_loop().time() - self.started
        else:
            self.attempt.duration = 0.0

    async def close(self) -> None:
        """Cancel the request if it is still running and close its connection."""
        task = self.task
        if task is not None:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])
            if not task.cancelled():
                task.exception()
        await close_quietly(self.chunks, self.attempt.provider)


async def close_quietly(chunks: AsyncIterator[str] | None, provider: str) -> None:
    """Close a provider's chunk iterator (and so its connection); a failure to close is logged."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as exc:
        log.debug("closing %s's stream failed: %s", provider, exc)
