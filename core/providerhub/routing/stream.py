"""ChatStream: what `FallbackChain.stream()` gives the caller, reading its call's trace."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from ..attempt import Attempt
from ..events import Event
from ..stream import ChunkStream

__all__ = ["ChatStream", "Trace"]


class Trace(Protocol):
    """What a ChatStream reads from the call it streams (`providerhub.routing.call.Call`)."""

    attempts: list[Attempt]
    provider: str | None
    route: str | None
    finish_reason: str | None
    usage: dict[str, Any] | None

    def events(self) -> AsyncGenerator[Event, None]: ...


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
    or a stream stopped early or interrupted. A chain guards each of its attempts, so the
    stream counts as guarded.
    """

    __slots__ = ("_call",)
    guarded = True

    def __init__(self, call: Trace) -> None:
        self._call = call
        super().__init__(call.events())

    @property
    def provider(self) -> str | None:
        """The provider serving the answer, once one produced a chunk."""
        return self._call.provider

    @property
    def route(self) -> str | None:
        """The path to the serving provider through nested chains."""
        return self._call.route

    @property
    def attempts(self) -> list[Attempt]:
        """Every provider the chain considered, in order (final once the stream has ended)."""
        return self._call.attempts

    @property
    def finish_reason(self) -> str | None:
        """The serving stream's finish_reason, once the answer completed."""
        return self._call.finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        """The serving stream's token counts, once the answer completed (if it reported any)."""
        return self._call.usage

    def __repr__(self) -> str:
        return f"<ChatStream provider={self.provider!r} attempts={len(self.attempts)}>"
