"""NDJSON as Ollama's /api/chat streams it: one JSON object per line, `{"message": {...},
"done": false}` per delta, then `{"done": true, "done_reason": ...}` with the counts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._dialect import Dialect, Item, compact, fragments, model

if TYPE_CHECKING:
    # Typing only: a Reply renders itself through the formats (`Reply.wire`); see _dialect.py.
    from ._reply import Reply, ToolCallScript

CREATED_AT = "2024-01-01T00:00:00Z"
"""Every line's timestamp: fixed, so a stream's bytes are the same each time."""
DONE_REASONS = {"tool_calls": "stop"}
"""OpenAI finish reasons Ollama says otherwise; the others pass as given."""


class NDJSON(Dialect):
    content_type = "application/x-ndjson"
    malformed = ('{"message":{"content"', "{not json")
    encode = staticmethod(compact)

    def items(self, reply: Reply, payload: Mapping[str, Any]) -> list[Item]:
        def line(message: dict[str, Any]) -> Item:
            return ("delta", compact({**_head(reply, payload, message), "done": False}))

        texts = [*reply.chunks, *fragments(reply.refusal or "", reply.argument_fragment)]
        out = [line({"content": text}) for text in texts]
        out += [line({"content": "", "tool_calls": [_call(call)]}) for call in reply.tool_calls]
        if reply.done:
            out.append(("other", compact(_done(reply, payload, {"content": ""}))))
        return out

    def completion(self, reply: Reply, payload: Mapping[str, Any]) -> dict[str, Any]:
        if reply.verbatim_events is not None:
            raise ValueError("scripted events are streamed only in the ndjson format")
        message: dict[str, Any] = {"content": "".join(reply.chunks) + (reply.refusal or "")}
        if reply.tool_calls:
            message["tool_calls"] = [_call(call) for call in reply.tool_calls]
        return _done(reply, payload, message)

    def error(self, status: int | None, kind: str | None, message: str) -> dict[str, Any]:
        return {"error": message}

    def frame(self, data: str, end: str) -> str:
        return data + end

    def keepalive(self, end: str) -> str:
        return end


def _head(reply: Reply, payload: Mapping[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model(reply, payload),
        "created_at": CREATED_AT,
        "message": {"role": "assistant", **message},
    }


def _done(reply: Reply, payload: Mapping[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """The last line (or the whole non-streamed answer): reason and counts."""
    done: dict[str, Any] = {**_head(reply, payload, message), "done": True}
    if reply.finish_reason is not None:
        done["done_reason"] = DONE_REASONS.get(reply.finish_reason, reply.finish_reason)
    return {**done, **(reply.usage or {})}


def _call(call: ToolCallScript) -> dict[str, Any]:
    """A whole call, its arguments as an object; an `id` only when the script gives one."""
    function = {"name": call.name, "arguments": json.loads(call.arguments or "{}")}
    return {"id": call.id, "function": function} if call.id else {"function": function}
