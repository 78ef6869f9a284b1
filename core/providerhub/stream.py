"""Streams of one answer: the base every provider's `stream()` returns, and the chain's ChatStream.

`ChunkStream` wraps a provider's event stream (`providerhub.events`). Iterating it yields the
text chunks only, as the seed contract promised; `events()` yields every event (text, tool-call
deltas, refusal, logprobs) for callers that want them. Either way the stream assembles what it
saw: `tool_calls`, `refusal`, `logprobs`; `finish_reason` and `usage` say what the upstream
reported about the answer (None where a provider reports nothing). `ChatStream` is what
`FallbackChain.stream()` gives the caller: a ChunkStream that also says who is serving
(`provider`, `route`) and what was tried (`attempts`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self

from .attempt import Attempt
from .events import Event, Logprobs, RefusalDelta, ToolCallDelta, ToolCalls, merge_logprobs
from .messages import AssistantMessage, ToolCall

__all__ = ["ChatStream", "ChunkStream", "EventStream"]


class ChunkStream:
    """One answer. Iterating yields its text chunks; `events()` yields every event.

    Stopping early (`break` then `aclose()`, `async with`, or cancelling the task) closes the
    upstream connection.
    """

    __slots__ = ("_events", "_logprobs", "_refusal", "_tool_calls")

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

    def __init__(self, run: Callable[[ChatStream], AsyncGenerator[Event, None]]) -> None:
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
