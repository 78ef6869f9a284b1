"""How the deltas of one batch of chunks become events, for `providerhub.chat_completions`.

Neighbours of a kind are merged (text joined, a tool call's argument fragments joined) and
tool calls are numbered across the whole stream. Private: the public names live in
`chat_completions`.
"""

from __future__ import annotations

from typing import Any

from .events import Event, Logprobs, RefusalDelta, ToolCallDelta, merge_logprobs


class CallNumbers:
    """Which call a tool-call delta belongs to, over a whole stream.

    OpenAI numbers parallel calls by `index`. Some servers send no index, or the same one for
    every call, and tell calls apart only by `id`: an id seen before goes back to its call, a
    new id at an index another call already holds starts a new call, numbered after every call
    so far, so two calls are never merged and one is never split.
    """

    __slots__ = ("_by_id", "_ids", "_numbers")

    def __init__(self) -> None:
        self._numbers: dict[int, int] = {}
        """The upstream's index -> the number of the call it currently stands for."""
        self._ids: dict[int, str | None] = {}
        """Call number -> its id (None until one arrives)."""
        self._by_id: dict[str, int] = {}

    def number(self, index: int, call_id: str | None) -> int:
        """The call number of a delta at the upstream's `index` carrying `call_id`."""
        if call_id:
            known = self._by_id.get(call_id)
            if known is not None:
                self._numbers[index] = known
                return known
        number = self._numbers.get(index)
        if number is None or (call_id and self._ids[number] is not None):
            number = index if index not in self._ids else max(self._ids) + 1
            self._numbers[index] = number
            self._ids[number] = None
        if call_id:
            self._ids[number] = call_id
            self._by_id[call_id] = number
        return number


_NO_FUNCTION: dict[str, Any] = {}


class Batch:
    """The events of one batch, with neighbours of a kind merged, flushed into `out`."""

    __slots__ = ("calls", "logprobs", "out", "text", "tool")

    def __init__(self, out: list[Event], calls: CallNumbers) -> None:
        self.out = out
        self.calls = calls
        self.text: list[str] = []
        self.tool: list[Any] | None = None
        """The pending tool-call delta: [upstream index, call number, id, name, type, argument
        fragments]."""
        self.logprobs: dict[str, Any] | None = None

    def flush(self) -> None:
        if self.text:
            self.out.append("".join(self.text))
            self.text.clear()
        self._flush_tool()

    def _flush_tool(self) -> None:
        tool = self.tool
        if tool is not None:
            _, number, call_id, name, kind, arguments = tool
            self.out.append(ToolCallDelta(number, call_id, name, "".join(arguments), kind))
            self.tool = None

    def finish(self) -> None:
        self.flush()
        if self.logprobs is not None:
            self.out.append(Logprobs(self.logprobs))
            self.logprobs = None

    def delta(self, delta: dict[str, Any]) -> None:
        content = delta.get("content")
        if content:
            if not isinstance(content, str):
                raise TypeError(content)
            self._flush_tool()
            self.text.append(content)
        refusal = delta.get("refusal")
        if refusal:
            if not isinstance(refusal, str):
                raise TypeError(refusal)
            self.flush()
            self.out.append(RefusalDelta(refusal))
        calls = delta.get("tool_calls")
        if calls:
            for position, call in enumerate(calls):
                self._tool_call(call, position)

    def _tool_call(self, call: dict[str, Any], position: int) -> None:
        function = call.get("function") or _NO_FUNCTION
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):
            raise TypeError(arguments)
        tool = self.tool
        if (
            tool is not None
            and "id" not in call
            and "name" not in function
            and tool[0] == call.get("index", position)
        ):
            tool[5].append(arguments)  # a fragment of the pending call: the common case
            return
        index = call.get("index", position)
        call_id, name, kind = call.get("id"), function.get("name"), call.get("type")
        if not isinstance(index, int) or not optional_strings(call_id, name, kind):
            raise TypeError(index)
        self.flush()
        number = self.calls.number(index, call_id or None)
        self.tool = [index, number, call_id or None, name or None, kind or "function", [arguments]]

    def add_logprobs(self, logprobs: dict[str, Any]) -> None:
        held = self.logprobs
        if held is None:
            held = {}
            merge_logprobs(held, logprobs)  # raises before keeping anything if not a dict
            self.logprobs = held
        else:
            merge_logprobs(held, logprobs)


def optional_strings(*values: object) -> bool:
    return all(value is None or isinstance(value, str) for value in values)
