"""What a provider's answer is made of: text deltas, tool-call deltas, refusal text, logprobs.

A provider's event stream yields `Event`s in the order the upstream sent them. Text stays a
plain `str`, so a text answer costs nothing more than before and a text-only caller (the seed
contract, `create_async_generator`) simply never sees the other kinds. Tool calls arrive as
`ToolCallDelta`s in OpenAI's streamed shape: the first delta of a call carries its `id` and
`name`, later ones carry argument fragments, all keyed by `index`. `ToolCalls` assembles them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .messages import ToolCall

__all__ = ["Event", "Logprobs", "RefusalDelta", "ToolCallDelta", "ToolCalls", "merge_logprobs"]


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of tool call number `index`: its id and name (first piece), argument text.

    `index` identifies the call: a provider gives each call of an answer its own number, also
    when its upstream numbers them badly (the OpenAI plugin tells such calls apart by id).
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: str = "function"


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """A piece of the model's refusal text (OpenAI's `delta.refusal`)."""

    text: str


@dataclass(frozen=True, slots=True)
class Logprobs:
    """Log probabilities the upstream sent with the answer (`choices[0].logprobs`), as given."""

    data: dict[str, Any]


Event = str | ToolCallDelta | RefusalDelta | Logprobs
"""One item of a provider's event stream; `str` is a text delta."""


def merge_logprobs(held: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Fold the logprobs of a later chunk into `held`: lists are concatenated (copied, never
    shared with `data`), a null never replaces a value already held, anything else replaces.

    Folding chunk by chunk or batch by batch gives the same result for list and null values
    (what upstreams send), so merged logprobs do not depend on how the stream was read.
    """
    for key, value in data.items():
        if isinstance(value, list):
            old = held.get(key)
            if isinstance(old, list):
                old.extend(value)
            else:
                held[key] = list(value)
        elif value is not None or key not in held:
            held[key] = value


class ToolCalls:
    """Tool-call deltas assembled into whole calls, in index order.

    Deltas of one call may be interleaved with those of others (parallel calls); the result
    depends only on the deltas, never on how they were batched.
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, delta: ToolCallDelta) -> None:
        """Fold `delta` into its call."""
        call = self._calls.get(delta.index)
        if call is None:
            self._calls[delta.index] = [delta.id, delta.type, delta.name, [delta.arguments]]
            return
        if delta.id and not call[0]:
            call[0] = delta.id
        if delta.name and not call[2]:
            call[2] = delta.name
        call[3].append(delta.arguments)

    def result(self) -> list[ToolCall]:
        """The calls so far, as chat-completions `tool_calls` entries."""
        return [
            {
                "id": call_id or "",
                "type": kind,
                "function": {"name": name or "", "arguments": "".join(arguments)},
            }
            for _, (call_id, kind, name, arguments) in sorted(self._calls.items())
        ]
