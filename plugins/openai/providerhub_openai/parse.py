"""Parsing OpenAI chat-completions answers, streamed chunks and whole completions, into events.

The streaming path works on the batches `providerhub.http.read_events` yields (one per network
read): per event one `json.loads` and a few dict lookups. What one batch holds is emitted in
order with neighbours of a kind merged (text joined, a tool call's argument fragments joined),
so the events describe the same answer however TCP split the bytes. A bad event or an error
sent in the stream raises only after everything before it was handed out. Payload and excerpt
rules are the shared ones of `providerhub.chat_completions` (which does not import aiohttp).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from providerhub import MalformedStreamError, ServerSentEvent, UpstreamError
from providerhub.chat_completions import DONE, error_text, event_payloads, excerpt
from providerhub.events import Event, Logprobs, RefusalDelta, ToolCallDelta, merge_logprobs


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


@dataclass(slots=True)
class Completion:
    """What a call reported besides its events, filled in while the answer arrives.

    `finish_reason` ("stop", "length", "tool_calls", ...) comes with the last choice chunk;
    `usage` (the upstream's token counts, e.g. `{"prompt_tokens": 9, "completion_tokens": 12,
    ...}`) with the usage chunk the provider asks for on every streamed call, or with a
    non-streamed completion. Both are final once the stream is exhausted.
    """

    id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    calls: CallNumbers = field(default_factory=CallNumbers, repr=False, compare=False)
    """How the stream's tool-call deltas map to calls (kept across network reads)."""


_NO_FUNCTION: dict[str, Any] = {}


class _Batch:
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
        if not isinstance(index, int) or not _optional_strings(call_id, name, kind):
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


def _optional_strings(*values: object) -> bool:
    return all(value is None or isinstance(value, str) for value in values)


def parse_events(
    events: Sequence[ServerSentEvent], completion: Completion, provider: str, out: list[Event]
) -> bool:
    """Append the events of a batch of chat.completion.chunk events to `out`; True once
    `[DONE]` ended the stream.

    Role-only and empty deltas add nothing; `finish_reason`, `usage`, `id` and `model` go to
    `completion`. An event that is not JSON or not chunk-shaped raises MalformedStreamError,
    an error object sent inside the stream UpstreamError with the upstream's message; either
    way `out` already holds every event before the offending one.
    """
    batch = _Batch(out, completion.calls)
    add_text = batch.text.append
    loads = json.loads
    data = ""
    try:
        for event in events:
            data = event.data
            if data == "[DONE]":
                return True
            try:
                chunks: Iterable[Any] = (loads(data),)
            except ValueError:
                chunks = event_payloads(event, provider)
            for chunk in chunks:
                if chunk is DONE:
                    return True
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content.__class__ is str and len(delta) == 1 and batch.tool is None:
                            if content:
                                add_text(content)  # the common case, a text delta alone
                        else:
                            batch.delta(delta)
                    logprobs = choice.get("logprobs")
                    if logprobs:
                        batch.add_logprobs(logprobs)
                    reason = choice.get("finish_reason")
                    if reason:
                        if not isinstance(reason, str):
                            raise TypeError(reason)
                        completion.finish_reason = reason
                elif "error" in chunk:
                    message = error_text(chunk["error"])
                    raise UpstreamError(provider, f"error in stream: {message}")
                usage = chunk.get("usage")
                if usage:
                    if not isinstance(usage, dict):
                        raise TypeError(usage)
                    completion.usage = usage
                if completion.id is None:
                    completion.id = chunk.get("id")
                    completion.model = chunk.get("model")
        return False
    except MalformedStreamError:
        raise
    except ValueError:
        raise MalformedStreamError(provider, "malformed event", excerpt=excerpt(data)) from None
    except (AttributeError, TypeError, IndexError, KeyError):
        raise MalformedStreamError(
            provider, "event is not a chat.completion.chunk", excerpt=excerpt(data)
        ) from None
    finally:
        batch.finish()


def parse_completion(raw: bytes, completion: Completion, provider: str) -> list[Event]:
    """The events of a non-streamed chat.completion body; the rest goes to `completion`."""
    out: list[Event] = []
    batch = _Batch(out, completion.calls)
    try:
        document = json.loads(raw)
        choice = document["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError(content)
        calls = message.get("tool_calls") or []
        batch.delta(
            {
                "content": content,
                "refusal": message.get("refusal"),
                "tool_calls": [{"index": index, **call} for index, call in enumerate(calls)],
            }
        )
        if choice.get("logprobs"):
            batch.add_logprobs(choice["logprobs"])
        batch.finish()
        reason, usage = choice.get("finish_reason"), document.get("usage") or None
        if not _optional_strings(reason) or not (usage is None or isinstance(usage, dict)):
            raise TypeError(reason)
        completion.finish_reason = reason
        completion.usage = usage
        completion.id = document.get("id")
        completion.model = document.get("model")
    except ValueError:
        raise MalformedStreamError(provider, "malformed completion", excerpt=excerpt(raw)) from None
    except (AttributeError, TypeError, IndexError, KeyError):
        raise MalformedStreamError(
            provider, "body is not a chat.completion", excerpt=excerpt(raw)
        ) from None
    return out
