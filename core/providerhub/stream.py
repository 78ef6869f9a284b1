"""Streams of one answer: the base every provider's `stream()` returns.

`ChunkStream` wraps a provider's event stream (`providerhub.events`). Iterating it yields the
text chunks only, as the seed contract promised; `events()` yields every event (text, tool-call
deltas, refusal, logprobs) for callers that want them. Either way the stream assembles what it
saw: `tool_calls`, `refusal`, `logprobs`; `finish_reason` and `usage` say what the upstream
reported about the answer (None where a provider reports nothing). `ChatStream` is what
`FallbackChain.stream()` gives the caller (`providerhub.routing.stream`): a ChunkStream that
also says who is serving and what was tried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, ClassVar, Self

from .events import Event, Logprobs, RefusalDelta, ToolCallDelta, ToolCalls, merge_logprobs
from .messages import AssistantMessage, ToolCall

__all__ = ["ChunkStream", "EventStream"]


class ChunkStream:
    """One answer. Iterating yields its text chunks; `events()` yields every event.

    Stopping early (`break` then `aclose()`, `async with`, or cancelling the task) closes the
    upstream connection.
    """

    __slots__ = ("_events", "_logprobs", "_refusal", "_tool_calls")
    guarded: ClassVar[bool] = False
    """Whether the stream enforces its provider's timeouts and classifies its errors already
    (`providerhub.provider.GuardedStream`; a chain's stream guards each attempt)."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events
        self._tool_calls: ToolCalls | None = None
        self._refusal: list[str] | None = None
        self._logprobs: dict[str, Any] | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        while True:
            event = await anext(self._events)
            if isinstance(event, str):
                return event
            self._note(event)

    def events(self) -> EventStream:
        """Every event of the rest of the answer, in order (text as `str`)."""
        return EventStream(self)

    def _note(self, event: Event) -> None:
        """Keep what a non-text event adds to the answer."""
        if isinstance(event, ToolCallDelta):
            if self._tool_calls is None:
                self._tool_calls = ToolCalls()
            self._tool_calls.add(event)
        elif isinstance(event, RefusalDelta):
            if self._refusal is None:
                self._refusal = []
            self._refusal.append(event.text)
        elif isinstance(event, Logprobs):
            if self._logprobs is None:
                self._logprobs = {}
            merge_logprobs(self._logprobs, event.data)

    async def aclose(self) -> None:
        """Stop the stream and close any upstream connection it holds."""
        aclose = getattr(self._events, "aclose", None)
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
        """Read the rest of the stream and return its text joined."""
        return "".join([chunk async for chunk in self])

    async def message(self) -> AssistantMessage:
        """Read the rest of the stream; the assistant message it makes, ready for the history.

        `content` is the text read here (None when there is none but tool calls or a refusal);
        `tool_calls` and `refusal` are there when the answer had them.
        """
        text = await self.text()
        calls = self.tool_calls
        refusal = self.refusal
        message: AssistantMessage = {
            "role": "assistant",
            "content": text or (None if calls or refusal is not None else ""),
        }
        if calls:
            message["tool_calls"] = calls
        if refusal is not None:
            message["refusal"] = refusal
        return message

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls the answer made so far, assembled (empty when none)."""
        return [] if self._tool_calls is None else self._tool_calls.result()

    @property
    def refusal(self) -> str | None:
        """The model's refusal text, when it refused."""
        return None if self._refusal is None else "".join(self._refusal)

    @property
    def logprobs(self) -> dict[str, Any] | None:
        """The log probabilities the upstream sent, if any: lists concatenated across chunks
        (`providerhub.events.merge_logprobs`)."""
        return self._logprobs

    @property
    def finish_reason(self) -> str | None:
        """Why the upstream stopped ("stop", "length", "tool_calls", ...), once it said so;
        None when the provider does not report it."""
        return None

    @property
    def usage(self) -> dict[str, Any] | None:
        """The upstream's token counts, once it sent them; None when it did not."""
        return None


class EventStream:
    """Every event of a ChunkStream (see `ChunkStream.events`); closing it closes the stream."""

    __slots__ = ("stream",)

    def __init__(self, stream: ChunkStream) -> None:
        self.stream = stream

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        stream = self.stream
        event = await anext(stream._events)
        if not isinstance(event, str):
            stream._note(event)
        return event

    async def aclose(self) -> None:
        """Stop the stream and close any upstream connection it holds."""
        await self.stream.aclose()
