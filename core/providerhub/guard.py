"""The guard: what every provider call runs under, whoever makes it.

`guard` re-yields a provider's chunks under the wall-clock deadlines of its `Timeouts` (first
chunk, idle, total; connect is the socket's) and turns transport errors a plugin let escape
into the taxonomy. `GuardedStream` is a provider's answer under the guard that still reports
what the implementation's own stream reports. `AsyncGeneratorProvider` applies both to its
subclasses; `providerhub.provider.open_stream` to any provider object.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from .errors import ProviderHubError, UpstreamConnectionError, UpstreamTimeoutError, os_error_text
from .events import Event
from .stream import ChunkStream
from .timeouts import Phase, Timeouts, Watchdog

__all__ = ["GuardedStream", "guard"]

E = TypeVar("E")


class GuardedStream(ChunkStream):
    """A provider's answer under the guard (`guard`), still reporting the `finish_reason` and
    `usage` of the stream it wraps when that one reports them.

    A source ChunkStream that iterates as every ChunkStream does is read below its
    EventStream (one iterator fewer per event: this stream notes the events itself, so the
    source's own `tool_calls`, `refusal` and `logprobs` stay empty); one that changes its
    iteration is read through `events()`. Either way the source's `aclose` closes it.
    """

    __slots__ = ("_source",)
    guarded = True

    def __init__(
        self, source: AsyncIterator[Event] | ChunkStream, timeouts: Timeouts, provider: str
    ) -> None:
        if not isinstance(source, ChunkStream):
            events: AsyncIterator[Event] = source
            close = None
        elif _iterates_plainly(type(source)):
            events, close = source._events, source.aclose
        else:
            events, close = source.events(), None
        super().__init__(guard(events, timeouts, provider, close=close))
        self._source = source

    @property
    def source(self) -> AsyncIterator[Event] | ChunkStream:
        """What the provider's implementation returned (e.g. a stream of its own type)."""
        return self._source

    @property
    def finish_reason(self) -> str | None:
        reason = getattr(self._source, "finish_reason", None)
        return reason if isinstance(reason, str) else None

    @property
    def usage(self) -> dict[str, Any] | None:
        usage = getattr(self._source, "usage", None)
        return usage if isinstance(usage, dict) else None


def _iterates_plainly(kind: type[ChunkStream]) -> bool:
    """Whether a ChunkStream class reads its events as the base class does."""
    return kind.__anext__ is ChunkStream.__anext__ and kind.events is ChunkStream.events


async def guard(
    chunks: AsyncIterator[E],
    timeouts: Timeouts,
    provider: str,
    *,
    close: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[E]:
    """Re-yield `chunks` (text or events) under the wall-clock deadlines, with transport errors
    classified.

    Subclasses of AsyncGeneratorProvider get this automatically; a chain applies it to any
    other provider object (see `is_guarded`).

    The first chunk (any event: a tool call counts) must come within `first_chunk`, each later
    one within `idle` of the one before, all within `total`; an upstream trickling keep-alives
    without text still times out.
    The wrapped generator is always closed (by `close` when given), so its connection is too.
    """
    loop = asyncio.get_running_loop()
    end = None if timeouts.total is None else loop.time() + timeouts.total
    step: float | None = timeouts.first_chunk
    phase: Phase = "first_chunk"
    watchdog = Watchdog(loop)
    try:
        while True:
            deadline, which = step, phase
            limit = None if step is None else loop.time() + step
            if end is not None and (limit is None or end <= limit):
                limit, deadline, which = end, timeouts.total, "total"
            watchdog.arm(limit)
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                watchdog.disarm()
                return
            except BaseException as exc:
                if watchdog.disarm():
                    raise UpstreamTimeoutError(provider, which, deadline) from None
                if not isinstance(exc, Exception) or isinstance(exc, ProviderHubError):
                    raise
                mapped = _classify(exc, provider)
                if mapped is exc:
                    raise
                raise mapped from exc
            watchdog.disarm()
            yield chunk
            step, phase = timeouts.idle, "idle"
    finally:
        watchdog.close()
        aclose = close or getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _classify(exc: Exception, provider: str) -> Exception:
    """Transport errors a plugin let escape, classified; any other error is returned unchanged."""
    if type(exc).__module__.startswith("aiohttp"):
        from .http import classify

        return classify(exc, provider)
    if isinstance(exc, OSError):
        return UpstreamConnectionError(provider, f"connection failed: {os_error_text(exc)}")
    return exc
