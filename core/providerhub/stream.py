"""Streams of text chunks: the base every streaming result shares, and the chain's ChatStream.

`ChunkStream` is an async iterator of text chunks that closes its upstream when stopped early,
and what every provider's `stream()` returns; `finish_reason` and `usage` say what the upstream
reported about the answer (None where a provider reports nothing). `ChatStream` is what
`FallbackChain.stream()` gives the caller: a ChunkStream that also says who is serving
(`provider`, `route`) and what was tried (`attempts`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self

from .attempt import Attempt

__all__ = ["ChatStream", "ChunkStream"]


class ChunkStream:
    """Text chunks of one answer. Stopping early (`break` then `aclose()`, `async with`, or
    cancelling the task) closes the upstream connection."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: AsyncIterator[str]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        return await anext(self._chunks)

    async def aclose(self) -> None:
        """Stop the stream and close any upstream connection it holds."""
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> Self:
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

    @property
    def finish_reason(self) -> str | None:
        """Why the upstream stopped ("stop", "length", ...), once it said so; None when the
        provider does not report it."""
        return None

    @property
    def usage(self) -> dict[str, Any] | None:
        """The upstream's token counts, once it sent them; None when it did not."""
        return None


class ChatStream(ChunkStream):
    """Text chunks of one chat answer; `provider` and `attempts` say how it was obtained.

    `provider` is None until the first chunk arrives; it names the provider that actually
    answers, also when that one sits inside a nested chain, and after a hand-over
    (`on_interrupt="continue"`) the one now serving. `route` is the path to it through nested
    chains, e.g. "outer > inner > good". `attempts` grows while the chain works and is final
    once the stream ends; a nested chain's own attempts are in its Attempt's `inner`.

    `finish_reason` and `usage` are those the serving provider's stream reported (through
    nested chains, and after a hand-over those of the provider that finished the answer); they
    are set once the answer has completed, and stay None for a provider that reports nothing
    or a stream stopped early or interrupted.
    """

    __slots__ = ("_finish_reason", "_usage", "attempts", "provider", "route")

    def __init__(self, run: Callable[[ChatStream], AsyncGenerator[str, None]]) -> None:
        self.provider: str | None = None
        self.route: str | None = None
        self.attempts: list[Attempt] = []
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        super().__init__(run(self))

    @property
    def finish_reason(self) -> str | None:
        """The serving stream's finish_reason, once the answer completed."""
        return self._finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        """The serving stream's token counts, once the answer completed (if it reported any)."""
        return self._usage

    def completed_by(self, served: object) -> None:
        """Take `finish_reason` and `usage` from the stream that served the whole answer.

        The chain calls this when its winner's stream ends; `served` may be any provider's
        iterator, so values of the wrong type are ignored.
        """
        reason = getattr(served, "finish_reason", None)
        usage = getattr(served, "usage", None)
        self._finish_reason = reason if isinstance(reason, str) else None
        self._usage = usage if isinstance(usage, dict) else None

    def __repr__(self) -> str:
        return f"<ChatStream provider={self.provider!r} attempts={len(self.attempts)}>"
