"""The OpenAI chat-completions format: `data: {chat.completion.chunk}` events ending with
`data: [DONE]`, and the equivalent non-streamed `chat.completion`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from itertools import chain, zip_longest
from typing import TYPE_CHECKING, Any

from ._dialect import Dialect, Item, fragments, model

if TYPE_CHECKING:
    # Typing only: a Reply renders itself through the formats (`Reply.wire`); see _dialect.py.
    from ._reply import Reply


class OpenAI(Dialect):
    lacks = ()
    malformed = ('{"choices": [{"delta"', "{not json")

    def items(self, reply: Reply, payload: Mapping[str, Any]) -> list[Item]:
        name = model(reply, payload)
        out: list[Item] = [("head", _chunk(name, {"role": "assistant"}, None))]
        out += [("delta", _chunk(name, delta, None, lp)) for delta, lp in _deltas(reply)]
        out.append(("other", _chunk(name, {}, reply.finish_reason)))
        options = payload.get("stream_options")
        if reply.usage is not None and isinstance(options, dict) and options.get("include_usage"):
            usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": name}
            out.append(("other", json.dumps({**usage, "choices": [], "usage": dict(reply.usage)})))
        if reply.done:
            out.append(("other", "[DONE]"))
        return out

    def completion(self, reply: Reply, payload: Mapping[str, Any]) -> dict[str, Any]:
        finish_reason = reply.finish_reason
        if reply.verbatim_events is not None:
            message, finish_reason = _assembled(reply.verbatim_events)
        else:
            message = {"role": "assistant", "content": "".join(reply.chunks)}
            if reply.tool_calls or reply.refusal is not None:
                message["content"] = message["content"] or None
            if reply.refusal is not None:
                message["refusal"] = reply.refusal
            if reply.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call.id or f"call_{index}",
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for index, call in enumerate(reply.tool_calls)
                ]
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
        if reply.logprobs:
            choice["logprobs"] = _logprobs(reply.chunks)
        completion: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model(reply, payload),
            "choices": [choice],
        }
        if reply.usage is not None:
            completion["usage"] = dict(reply.usage)
        return completion

    def error(self, status: int | None, kind: str | None, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind or "fake_error", "code": status}}


def _deltas(reply: Reply) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every delta in stream order (content, tool calls, refusal), each with its logprobs."""
    size = reply.argument_fragment
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        ({"content": text}, _logprobs([text]) if reply.logprobs else None) for text in reply.chunks
    ]
    firsts = [
        {
            "tool_calls": [
                {
                    "index": index,
                    "id": call.id or f"call_{index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            ]
        }
        for index, call in enumerate(reply.tool_calls)
    ]
    pieces = [
        [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in fragments(call.arguments, size)
        ]
        for index, call in enumerate(reply.tool_calls)
    ]
    if reply.interleave_tool_calls:
        rounds = zip_longest(*pieces)
        calls = [*firsts, *(delta for delta in chain.from_iterable(rounds) if delta is not None)]
    else:
        pairs = zip(firsts, pieces, strict=True)
        calls = [delta for first, own in pairs for delta in (first, *own)]
    refusal = [
        {"content": None, "refusal": piece} for piece in fragments(reply.refusal or "", size)
    ]
    out.extend((delta, None) for delta in calls + refusal)
    return out


def _logprobs(tokens: Sequence[str]) -> dict[str, Any]:
    return {
        "content": [
            {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}
            for token in tokens
        ]
    }


def _chunk(
    model: str,
    delta: Mapping[str, Any],
    finish_reason: str | None,
    logprobs: Mapping[str, Any] | None = None,
) -> str:
    choice: dict[str, Any] = {"index": 0, "delta": dict(delta)}
    if logprobs is not None:
        choice["logprobs"] = dict(logprobs)
    choice["finish_reason"] = finish_reason
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
        }
    )


def _assembled(events: Sequence[str]) -> tuple[dict[str, Any], str | None]:
    """Merge the deltas of scripted events as a client would, skipping events it cannot use."""
    content: list[str] = []
    refusal: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish_reason: str | None = None
    for data in events:
        try:
            chunk = json.loads(data)
            choice = chunk["choices"][0]
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            refusal.append(delta.get("refusal") or "")
            for call in delta.get("tool_calls") or ():
                function = {"name": "", "arguments": ""}
                fresh = {"id": "", "type": "function", "function": function}
                merged = calls.setdefault(call["index"], fresh)
                merged["id"] = call.get("id") or merged["id"]
                for key in ("name", "arguments"):
                    merged["function"][key] += (call.get("function") or {}).get(key) or ""
            finish_reason = choice.get("finish_reason") or finish_reason
        except (ValueError, LookupError, TypeError, AttributeError):
            continue
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if any(refusal):
        message["refusal"] = "".join(refusal)
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return message, finish_reason
