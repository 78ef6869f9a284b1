"""Anthropic Messages answers as providerhub events: the named-event stream and the JSON message.

`parse_events` reads one batch of server-sent events (`message_start`, `content_block_start`,
`content_block_delta`, `content_block_stop`, `message_delta`, `message_stop`, `ping`, `error`;
each event's JSON says its type, so the SSE event name is not needed) and appends events to a
list; the `Answer` it fills keeps, across network reads, what the answer reported. Text deltas
become `str` events; a `tool_use` block becomes `ToolCallDelta`s numbered by the call's place
among the answer's calls (not by block index): the first carries its id and name, the next its
`input_json_delta` fragments, and a call that streamed no input gets "{}" (or its starting
input) so its arguments are always JSON. Neighbours of a kind within a batch are merged, so the
events describe the same answer however TCP split the bytes. Unknown event, block and delta
types are skipped, as Anthropic asks of clients (blocks of features providerhub never requests,
such as thinking). `parse_message` does the same for a non-streamed message.

Stop reasons map to chat-completions finish reasons (`FINISH_REASONS`; one not listed is kept
as given); usage becomes OpenAI's shape (`openai_usage`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from providerhub import MalformedStreamError, UpstreamError, jsonload
from providerhub.chat_completions import BAD_PAYLOAD, NOT_JSON, Completion, excerpt
from providerhub.events import Event, ToolCallDelta
from providerhub.sse import ServerSentEvent, data_of

from .errors import stream_error

__all__ = ["FINISH_REASONS", "Answer", "openai_usage", "parse_events", "parse_message"]

FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic's `stop_reason` -> the chat-completions `finish_reason`."""

_dumps = json.JSONEncoder(ensure_ascii=False).encode


class _Call:
    """A tool_use block being streamed: its call number, whether input came, its start input."""

    __slots__ = ("number", "start", "streamed")

    def __init__(self, number: int, start: Any) -> None:
        self.number = number
        self.streamed = False
        self.start = start


class Answer:
    """What one answer reported besides its events, kept across network reads.

    `completion` has `id`, `model`, `finish_reason` and `usage` (OpenAI's shape) for a
    `providerhub.chat_completions.CompletionStream`; `done` says `message_stop` came.
    """

    __slots__ = ("calls", "completion", "done", "tokens")

    def __init__(self) -> None:
        self.completion = Completion()
        self.tokens: dict[str, Any] = {}
        """Anthropic's own usage counts, the latest of each."""
        self.calls: dict[int, _Call] = {}
        """Block index -> the tool call it streams."""
        self.done = False

    def start(self, message: Mapping[str, Any]) -> None:
        self.completion.id = message.get("id")
        self.completion.model = message.get("model")
        self.count(message.get("usage"))

    def count(self, usage: Any) -> None:
        if usage:
            self.tokens.update(usage)
            self.completion.usage = openai_usage(self.tokens)

    def stop(self, reason: Any) -> None:
        if reason is not None:
            if not isinstance(reason, str):
                raise TypeError(reason)
            self.completion.finish_reason = FINISH_REASONS.get(reason, reason)


def openai_usage(tokens: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's counts as chat-completions usage.

    `prompt_tokens` counts the whole prompt, as OpenAI's does: Anthropic's `input_tokens` plus
    the tokens written to and read from the prompt cache, which `prompt_tokens_details` keeps
    (`cached_tokens` as OpenAI names the read ones, and both under Anthropic's names).
    """
    counts = {
        name: tokens.get(name) or 0
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        )
    }
    for value in counts.values():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(value)
    created, read = counts["cache_creation_input_tokens"], counts["cache_read_input_tokens"]
    prompt = counts["input_tokens"] + created + read
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": counts["output_tokens"],
        "total_tokens": prompt + counts["output_tokens"],
    }
    if "cache_creation_input_tokens" in tokens or "cache_read_input_tokens" in tokens:
        usage["prompt_tokens_details"] = {
            "cached_tokens": read,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }
    return usage


class _Batch:
    """The events of one batch, neighbours of a kind merged, flushed into `out`."""

    __slots__ = ("out", "text", "tool")

    def __init__(self, out: list[Event]) -> None:
        self.out = out
        self.text: list[str] = []
        self.tool: list[Any] | None = None
        """The pending tool-call delta: [call number, id, name, argument fragments]."""

    def flush(self) -> None:
        if self.text:
            self.out.append("".join(self.text))
            self.text.clear()
        tool = self.tool
        if tool is not None:
            self.out.append(ToolCallDelta(tool[0], tool[1], tool[2], "".join(tool[3])))
            self.tool = None

    def open_call(self, number: int, call_id: Any, name: Any) -> None:
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise TypeError(call_id)
        self.flush()
        self.tool = [number, call_id, name, []]

    def fragment(self, number: int, text: str) -> None:
        tool = self.tool
        if tool is None or tool[0] != number:
            self.flush()
            self.tool = tool = [number, None, None, []]
        tool[3].append(text)


def parse_events(
    events: Sequence[str] | Sequence[ServerSentEvent],
    answer: Answer,
    provider: str,
    out: list[Event],
) -> bool:
    """Append the events of a batch (their data, or `ServerSentEvent`s) to `out`; True once
    `message_stop` ended the answer.

    An event that is not JSON or not shaped as Anthropic's raises MalformedStreamError, an
    `error` event the UpstreamError `providerhub_anthropic.errors.stream_error` makes; either
    way `out` already holds every event before the offending one.
    """
    batch = _Batch(out)
    add_text = batch.text.append
    loads = jsonload.loads
    data = ""
    try:
        for data in data_of(events):
            payload = loads(data)
            kind = payload["type"]
            if kind == "content_block_delta":
                delta = payload["delta"]
                delta_kind = delta["type"]
                if delta_kind == "text_delta":
                    text = delta["text"]
                    if text.__class__ is not str:
                        raise TypeError(text)
                    if batch.tool is not None:
                        batch.flush()
                    if text:
                        add_text(text)
                elif delta_kind == "input_json_delta":
                    fragment = delta["partial_json"]
                    if not isinstance(fragment, str):
                        raise TypeError(fragment)
                    call = answer.calls[payload["index"]]
                    call.streamed = True
                    batch.fragment(call.number, fragment)
            elif kind == "content_block_start":
                _block_start(payload, answer, batch)
            elif kind == "content_block_stop":
                ended = answer.calls.get(payload["index"])
                if ended is not None and not ended.streamed:
                    batch.fragment(ended.number, _dumps(ended.start) if ended.start else "{}")
                    ended.streamed = True
            elif kind == "message_delta":
                answer.stop(payload["delta"].get("stop_reason"))
                answer.count(payload.get("usage"))
            elif kind == "message_start":
                answer.start(payload["message"])
            elif kind == "message_stop":
                answer.done = True
                return True
            elif kind == "error":
                raise stream_error(payload.get("error"), provider)
        return False
    except UpstreamError:
        raise
    except BAD_PAYLOAD as exc:
        problem = "malformed event" if isinstance(exc, NOT_JSON) else "unexpected event"
        raise MalformedStreamError(provider, problem, excerpt=excerpt(data)) from None
    finally:
        batch.flush()


def _block_start(payload: Mapping[str, Any], answer: Answer, batch: _Batch) -> None:
    block = payload["content_block"]
    kind = block["type"]
    if kind == "text":
        text = block.get("text") or ""
        if not isinstance(text, str):
            raise TypeError(text)
        if text:
            batch.flush()
            batch.text.append(text)
    elif kind == "tool_use":
        number = len(answer.calls)
        answer.calls[payload["index"]] = _Call(number, block.get("input"))
        batch.open_call(number, block["id"], block["name"])


def parse_message(raw: bytes, answer: Answer, provider: str) -> list[Event]:
    """The events of a non-streamed message body; the rest goes to `answer.completion`."""
    out: list[Event] = []
    try:
        message = jsonload.loads(raw)
        if message["type"] != "message":
            raise TypeError(message["type"])
        answer.start(message)
        answer.stop(message.get("stop_reason"))
        calls = 0
        for block in message["content"]:
            kind = block["type"]
            if kind == "text" and block["text"]:
                if not isinstance(block["text"], str):
                    raise TypeError(block)
                out.append(block["text"])
            elif kind == "tool_use":
                call_id, name = block["id"], block["name"]
                if not isinstance(call_id, str) or not isinstance(name, str):
                    raise TypeError(block)
                out.append(ToolCallDelta(calls, call_id, name, _dumps(block["input"])))
                calls += 1
        answer.done = True
    except BAD_PAYLOAD as exc:
        problem = "malformed message" if isinstance(exc, NOT_JSON) else "body is not a message"
        raise MalformedStreamError(provider, problem, excerpt=excerpt(raw)) from None
    return out
