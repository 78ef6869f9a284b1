"""CompletionStream: the events of one call, plus what the upstream reported about it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from providerhub import ChunkStream
from providerhub.events import Event

from .parse import Completion


class CompletionStream(ChunkStream):
    """One answer (text when iterated, every event from `events()`); `finish_reason` and
    `usage` are final once it is exhausted.

    Use it with `async with` (or call `aclose()`) to close the connection when stopping early.
    """

    __slots__ = ("completion",)

    def __init__(self, events: AsyncIterator[Event], completion: Completion) -> None:
        super().__init__(events)
        self.completion = completion

    @property
    def finish_reason(self) -> str | None:
        """Why the upstream stopped ("stop", "length", "tool_calls", ...), once it said so."""
        return self.completion.finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        """Token counts, when the upstream sent them (streamed calls ask for them)."""
        return self.completion.usage
