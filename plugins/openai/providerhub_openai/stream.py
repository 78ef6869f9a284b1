"""CompletionStream: the text chunks of one call, plus what the upstream reported about it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from .parse import Completion


class CompletionStream:
    """Async iterator of text chunks; `finish_reason` and `usage` are final once it is exhausted.

    Use it with `async with` (or call `aclose()`) to close the connection when stopping early.
    """

    __slots__ = ("_chunks", "completion")

    def __init__(self, chunks: AsyncIterator[str], completion: Completion) -> None:
        self._chunks = chunks
        self.completion = completion

    @property
    def finish_reason(self) -> str | None:
        """Why the upstream stopped ("stop", "length", ...), once it said so."""
        return self.completion.finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        """Token counts, when the upstream sent them (ask with stream_options.include_usage)."""
        return self.completion.usage

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> str:
        return await anext(self._chunks)

    async def aclose(self) -> None:
        """Stop the stream and close its connection."""
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> CompletionStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
