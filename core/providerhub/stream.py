"""Streams of text chunks: the base every streaming result shares, and the chain's ChatStream.

`ChunkStream` is an async iterator of text chunks that closes its upstream when stopped early;
`ChatStream` is what `FallbackChain.stream()` gives the caller: a ChunkStream that also says who
is serving (`provider`, `route`) and what was tried (`attempts`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Self

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


class ChatStream(ChunkStream):
    """Text chunks of one chat answer; `provider` and `attempts` say how it was obtained.

    `provider` is None until the first chunk arrives; it names the provider that actually
    answers, also when that one sits inside a nested chain, and after a hand-over
    (`on_interrupt="continue"`) the one now serving. `route` is the path to it through nested
    chains, e.g. "outer > inner > good". `attempts` grows while the chain works and is final
    once the stream ends; a nested chain's own attempts are in its Attempt's `inner`.
    """

    __slots__ = ("attempts", "provider", "route")

    def __init__(self, run: Callable[[ChatStream], AsyncGenerator[str, None]]) -> None:
        self.provider: str | None = None
        self.route: str | None = None
        self.attempts: list[Attempt] = []
        super().__init__(run(self))

    def __repr__(self) -> str:
        return f"<ChatStream provider={self.provider!r} attempts={len(self.attempts)}>"
