"""Anthropic Messages answers as the API sends them, for the anthropic plugin's tests: the
payloads of a streamed answer (named SSE events) and the equivalent JSON message."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

USAGE = {
    "input_tokens": 25,
    "output_tokens": 15,
    "cache_creation_input_tokens": 4,
    "cache_read_input_tokens": 10,
}
"""An answer's token counts, in Anthropic's names."""
OPENAI_USAGE = {
    "prompt_tokens": 39,
    "completion_tokens": 15,
    "total_tokens": 54,
    "prompt_tokens_details": {
        "cached_tokens": 10,
        "cache_creation_input_tokens": 4,
        "cache_read_input_tokens": 10,
    },
}
"""USAGE in chat-completions' shape."""

Block = tuple[str, Any]
"""("text", [pieces]) or ("tool_use", (id, name, [argument fragments]))."""


def sse(payloads: Sequence[Mapping[str, Any]], end: str = "\n") -> bytes:
    """Each payload as a named event (`event: TYPE`, `data: JSON`), as Anthropic sends it."""
    return "".join(
        f"event: {payload['type']}{end}data: {json.dumps(payload)}{end}{end}"
        for payload in payloads
    ).encode()


def stream(
    *blocks: Block,
    stop_reason: str = "end_turn",
    end_usage: Mapping[str, Any] | None = None,
    ping: bool = True,
) -> list[dict[str, Any]]:
    """The payloads of a streamed answer made of `blocks`, in Anthropic's order: USAGE with
    one output token at the start, the output tokens (or `end_usage`) at the end."""
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**USAGE, "output_tokens": 1},
    }
    out: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    if ping:
        out.append({"type": "ping"})
    for index, (kind, body) in enumerate(blocks):
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in body]
        else:
            call_id, name, fragments = body
            start = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in fragments]
        out.append({"type": "content_block_start", "index": index, "content_block": start})
        out += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        out.append({"type": "content_block_stop", "index": index})
    out.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": USAGE["output_tokens"]} if end_usage is None else end_usage,
        }
    )
    out.append({"type": "message_stop"})
    return out


def text(*pieces: str) -> Block:
    return ("text", list(pieces))


def tool(call_id: str, name: str, *fragments: str) -> Block:
    return ("tool_use", (call_id, name, list(fragments)))


def message(*blocks: Block, stop_reason: str = "end_turn") -> dict[str, Any]:
    """The non-streamed message equivalent to `stream(*blocks)`."""
    content: list[dict[str, Any]] = []
    for kind, body in blocks:
        if kind == "text":
            content.append({"type": "text", "text": "".join(body)})
        else:
            call_id, name, fragments = body
            arguments = "".join(fragments)
            content.append(
                {
                    "type": "tool_use",
                    "id": call_id,
                    "name": name,
                    "input": json.loads(arguments) if arguments else {},
                }
            )
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": USAGE,
    }


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A chat-completions tool call, as an assistant message's `tool_calls` holds it."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def error_event(kind: str, text: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text}}
