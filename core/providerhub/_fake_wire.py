"""How a `providerhub.testing.Reply` renders: SSE events with their pauses and faults, and the
equivalent non-streamed `chat.completion`. Private: import the public names from `testing`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, zip_longest
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    # For typing only: a Reply renders itself through this module (`Reply.wire`), so this one
    # arrow points back at testing.py; at run time nothing here imports it.
    from providerhub.testing import Reply


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Stop:
    how: Literal["hang", "close"]


Piece = bytes | Pause | Stop


def pieces(reply: Reply, payload: Mapping[str, Any]) -> Iterator[Piece]:
    """The byte pieces of a streamed reply, with pauses and faults in their places."""
    end = reply.line_ending
    if reply.trickle is not None:
        while True:
            yield f": keep-alive{end}{end}".encode()
            yield Pause(reply.trickle)
    if reply.raw is None:
        events = _events(reply, payload)
    else:
        size = reply.split or 65536
        events = [reply.raw[start : start + size] for start in range(0, len(reply.raw), size)]
    if reply.end != "eof":
        events.append(Stop(reply.end))
    yield from _coalesced(events, reply.split)


def _events(reply: Reply, payload: Mapping[str, Any]) -> list[Piece]:
    """The events in order; faults count the deltas (or the scripted events) before them."""
    end = reply.line_ending
    keepalive = f": keep-alive{end}{end}".encode() if reply.keepalive else b""
    model = str(payload.get("model") or reply.model)

    def event(data: str) -> bytes:
        return keepalive + f"data: {data}{end}{end}".encode()

    scripted = reply.verbatim_events is not None
    if reply.verbatim_events is not None:
        body = list(reply.verbatim_events)
        events: list[Piece] = []
    else:
        body = [_chunk(model, delta, None, logprobs) for delta, logprobs in _deltas(reply)]
        events = [event(_chunk(model, {"role": "assistant"}, None))]
    count = len(body)
    for index in range(count + 1):
        if index == reply.hang_after:
            events.append(Stop("hang"))
        if index == reply.close_after:
            events.append(Stop("close"))
        if index == reply.malformed_after:
            events.append(event("{not json" if index == count else '{"choices": [{"delta"'))
        if index < count:
            if reply.delay:
                events.append(Pause(reply.delay))
            events.append(event(body[index]))
    if not scripted:
        events.append(event(_chunk(model, {}, reply.finish_reason)))
        options = payload.get("stream_options")
        if reply.usage is not None and isinstance(options, dict) and options.get("include_usage"):
            usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
            events.append(event(json.dumps({**usage, "choices": [], "usage": dict(reply.usage)})))
        if reply.done:
            events.append(event("[DONE]"))
    events.extend(event(data) for data in reply.after_done)
    return events


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
    fragments = [
        [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in _split(call.arguments, size)
        ]
        for index, call in enumerate(reply.tool_calls)
    ]
    if reply.interleave_tool_calls:
        rounds = zip_longest(*fragments)
        calls = [*firsts, *(delta for delta in chain.from_iterable(rounds) if delta is not None)]
    else:
        calls = [
            delta for first, own in zip(firsts, fragments, strict=True) for delta in (first, *own)
        ]
    refusal = [{"content": None, "refusal": piece} for piece in _split(reply.refusal or "", size)]
    out.extend((delta, None) for delta in calls + refusal)
    return out


def _split(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def _logprobs(tokens: Sequence[str]) -> dict[str, Any]:
    return {
        "content": [
            {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}
            for token in tokens
        ]
    }


def _coalesced(events: Sequence[Piece], split: int | None) -> Iterator[Piece]:
    """Join adjacent events into writes of about 64 KiB, or cut them into `split`-byte pieces."""
    pending = bytearray()
    for item in events:
        if not isinstance(item, bytes):
            yield from _drain(pending, split)
            yield item
            continue
        pending += item
        if split is None and len(pending) >= 65536:
            yield from _drain(pending, split)
    yield from _drain(pending, split)


def _drain(pending: bytearray, split: int | None) -> Iterator[bytes | Pause]:
    if split is None:
        if pending:
            yield bytes(pending)
            pending.clear()
        return
    while pending:
        yield bytes(pending[:split])
        del pending[:split]
        yield Pause(0.001)


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


def completion(reply: Reply, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The non-streamed answer equivalent to the stream `reply` would send."""
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
        "model": str(payload.get("model") or reply.model),
        "choices": [choice],
    }
    if reply.usage is not None:
        completion["usage"] = dict(reply.usage)
    return completion


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
