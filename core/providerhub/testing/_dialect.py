"""What the renderer asks of a wire format (`Dialect`), and the helpers formats share."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    # For typing only: a Reply renders itself through the formats (`Reply.wire`), so this
    # arrow points back at _reply.py; at run time nothing here imports it.
    from ._reply import Reply

Kind = Literal["head", "delta", "other"]
"""An event's part in a stream: its opening, one delta (faults count these), or the rest."""
Item = tuple[Kind, str]
"""One event of a stream: its part and its data (the text `frame` sends)."""


class Dialect(ABC):
    """One wire format: its events, its framing, its non-streamed answer and its errors."""

    content_type: ClassVar[str] = "text/event-stream"
    lacks: ClassVar[tuple[str, ...]] = ("logprobs", "interleave_tool_calls")
    """Reply options the format has no way to send: refused rather than dropped silently."""
    malformed: ClassVar[tuple[str, str]]
    """Data of a malformed event, mid-stream and after the last delta."""

    def refuse_lacking(self, reply: Reply, wire: str) -> None:
        """ValueError if `reply` sets an option in `lacks`."""
        for option in self.lacks:
            if getattr(reply, option):
                raise ValueError(f"{option} exists in the OpenAI format only, not {wire}")

    def streamed(self, payload: Mapping[str, Any]) -> bool:
        """Whether the request asks for a stream (the formats' own default: yes)."""
        return payload.get("stream") is not False

    @abstractmethod
    def items(self, reply: Reply, payload: Mapping[str, Any]) -> list[Item]:
        """The events of the streamed answer, in order."""

    @abstractmethod
    def completion(self, reply: Reply, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The non-streamed answer equivalent to the stream."""

    @abstractmethod
    def error(self, status: int | None, kind: str | None, message: str) -> dict[str, Any]:
        """An error body (HTTP `status`), or an in-stream error event's data (`status` None)."""

    def encode(self, value: Any) -> str:
        """A JSON value as the format writes it."""
        return json.dumps(value)

    def frame(self, data: str, end: str) -> str:
        """One event on the wire."""
        return f"data: {data}{end}{end}"

    def keepalive(self, end: str) -> str:
        """What keeps an idle connection alive."""
        return f": keep-alive{end}{end}"


def compact(value: Any) -> str:
    """JSON without spaces, as Anthropic and Ollama write it."""
    return json.dumps(value, separators=(",", ":"))


def fragments(text: str, size: int) -> list[str]:
    """`text` cut into pieces of `size` characters."""
    return [text[start : start + size] for start in range(0, len(text), size)]


def model(reply: Reply, payload: Mapping[str, Any]) -> str:
    """The model an answer names: the request's, else the reply's."""
    return str(payload.get("model") or reply.model)
