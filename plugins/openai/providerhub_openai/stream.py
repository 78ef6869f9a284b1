"""CompletionStream: the text chunks of one call, plus what the upstream reported about it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from providerhub import ChunkStream

from .parse import Completion


class CompletionStream(ChunkStream):
    """Async iterator of text chunks; `finish_reason` and `usage` are final once it is exhausted.

    Use it with `async with` (or call `aclose()`) to close the connection when stopping early.
    """

    __slots__ = ("completion",)

    def __init__(self, chunks: AsyncIterator[str], completion: Completion) -> None:
        super().__init__(chunks)
        self.completion = completion

    @property
    def finish_reason(self) -> str | None:
        """Why the upstream stopped ("stop", "length", ...), once it said so."""
        return self.completion.finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        """Token counts, when the upstream sent them (ask with stream_options.include_usage)."""
        return self.completion.usage
