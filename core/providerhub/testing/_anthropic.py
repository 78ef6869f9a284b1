"""Anthropic's Messages format: named SSE events (`message_start`, a `content_block_start`,
`content_block_delta`s and `content_block_stop` per block, `message_delta`, `message_stop`,
`ping`, `error`), compact JSON, and the non-streamed `{"type": "message", ...}`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._dialect import Dialect, Item, compact, fragments, model

if TYPE_CHECKING:
    # Typing only: a Reply renders itself through the formats (`Reply.wire`); see _dialect.py.
    from ._reply import Reply, ToolCallScript

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
"""OpenAI finish reasons and the stop reasons Anthropic says instead; others pass as given."""
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
PING = '{"type":"ping"}'


class Anthropic(Dialect):
    malformed = ('{"type":"content_block_delta","index"', "{not json")
    encode = staticmethod(compact)

    def streamed(self, payload: Mapping[str, Any]) -> bool:
        return payload.get("stream") is True

    def items(self, reply: Reply, payload: Mapping[str, Any]) -> list[Item]:
        usage = _usage(reply)
        opening = {key: value for key, value in usage.items() if key != "output_tokens"}
        opening["output_tokens"] = min(1, usage["output_tokens"])
        message = {**_message(reply, payload, []), "stop_reason": None, "stop_sequence": None}
        out: list[Item] = [
            ("head", compact({"type": "message_start", "message": {**message, "usage": opening}}))
        ]
        for index, (block, deltas) in enumerate(_blocks(reply)):
            start = {"type": "content_block_start", "index": index, "content_block": block}
            out.append(("other", compact(start)))
            if index == 0:
                out.append(("other", PING))
            for delta in deltas:
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                out.append(("delta", compact(event)))
            out.append(("other", compact({"type": "content_block_stop", "index": index})))
        stop = {"stop_reason": _stop_reason(reply), "stop_sequence": reply.stop_sequence}
        final = {"output_tokens": usage["output_tokens"]}
        out.append(("other", compact({"type": "message_delta", "delta": stop, "usage": final})))
        if reply.done:
            out.append(("other", compact({"type": "message_stop"})))
        return out

    def completion(self, reply: Reply, payload: Mapping[str, Any]) -> dict[str, Any]:
        if reply.verbatim_events is not None:
            raise ValueError("scripted events are streamed only in the anthropic format")
        content: list[dict[str, Any]] = []
        if reply.chunks or reply.refusal is not None:
            content.append({"type": "text", "text": "".join(reply.chunks) + (reply.refusal or "")})
        content += [
            {**_tool_use(index, call), "input": json.loads(call.arguments or "{}")}
            for index, call in enumerate(reply.tool_calls)
        ]
        return {
            **_message(reply, payload, content),
            "stop_reason": _stop_reason(reply),
            "stop_sequence": reply.stop_sequence,
            "usage": _usage(reply),
        }

    def error(self, status: int | None, kind: str | None, message: str) -> dict[str, Any]:
        default = ERROR_TYPES.get(status or 0, "api_error")
        return {"type": "error", "error": {"type": kind or default, "message": message}}

    def frame(self, data: str, end: str) -> str:
        """`event: TYPE` (from the data's "type") before the data, as Anthropic sends it."""
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        named = f"event: {kind}{end}" if isinstance(kind, str) else ""
        return f"{named}data: {data}{end}{end}"

    def keepalive(self, end: str) -> str:
        return self.frame(PING, end)


def _message(reply: Reply, payload: Mapping[str, Any], content: list[Any]) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model(reply, payload),
        "content": content,
    }


def _blocks(reply: Reply) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each content block as it starts, with its deltas: the text (and refusal), then tools."""
    size = reply.argument_fragment
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if reply.chunks or reply.refusal is not None:
        texts = [*reply.chunks, *fragments(reply.refusal or "", size)]
        deltas = [{"type": "text_delta", "text": text} for text in texts]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for index, call in enumerate(reply.tool_calls):
        pieces = fragments(call.arguments, size)
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
        blocks.append(({**_tool_use(index, call), "input": {}}, deltas))
    return blocks


def _tool_use(index: int, call: ToolCallScript) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id or f"toolu_{index}", "name": call.name}


def _stop_reason(reply: Reply) -> str | None:
    if reply.refusal is not None and reply.finish_reason == "stop":
        return "refusal"
    reason = reply.finish_reason
    return None if reason is None else STOP_REASONS.get(reason, reason)


def _usage(reply: Reply) -> dict[str, int]:
    return {"input_tokens": 0, "output_tokens": 0, **(reply.usage or {})}
