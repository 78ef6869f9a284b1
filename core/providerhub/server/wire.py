"""OpenAI's chat-completions wire format as the gateway speaks it: requests in, JSON and SSE out.

Parsing a request checks everything before any upstream I/O and raises `RequestError` (HTTP 400,
OpenAI-shaped), the nesting depth (`MAX_DEPTH`) and non-finite numbers first. Chunks are
rendered from a prefix fixed per response, so each content delta costs one JSON string encoding
of its text. The role delta has `"content": ""` before text and `"content": null` before a
tool call or a refusal, as OpenAI sends. Tool-call deltas go out in OpenAI's exact shape: a
call's first delta carries `index`, `id`, `type` and `name` with empty `arguments`, later ones
only `index` and argument fragments, also when the upstream repeated the id and name in every
delta (a client concatenating deltas would read them doubled). What an upstream sends besides
the answer's own text (tool-call ids and names, `finish_reason`, `usage`) has the remembered
secrets redacted (`_meta`): an upstream echoing a key there must not hand it to clients.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from ..errors import InvalidRequestError
from ..events import Event, Logprobs, RefusalDelta, ToolCallDelta
from ..messages import AssistantMessage, CheckedMessages, check_messages
from ..redaction import redact
from ..routing import CALL_OPTIONS

HANDLED = frozenset({"model", "messages", "stream", "n"})
"""Body fields the gateway acts on itself; every other field goes upstream as a parameter."""
REFUSED = frozenset(CALL_OPTIONS)
"""Keywords a chain call reads as how to run it (`providerhub.routing.CALL_OPTIONS`): a client
must not set them (a `proxy` from a client would make the gateway connect wherever it says)."""
MAX_DEPTH = 64
"""How deeply a request body may nest arrays and objects. Deeper is refused at once, before
anything that recurses (decoding, copying, encoding for the upstream) can exhaust the stack."""
DONE = b"data: [DONE]\n\n"
_string = encode_basestring_ascii
"""A str as a JSON string, exactly as `json.dumps(text)` writes it (json's own C encoder,
without the call's per-use argument checks): the hot path of every content delta."""


SHOULD_RETRY = "x-should-retry"
"""Whether the official SDKs may retry a refusal ("false": it cannot heal by retrying)."""
PROVIDER_HEADER = "x-providerhub-provider"
"""Who served an answer."""
ROUTE_HEADER = "x-providerhub-route"
"""The path through nested chains to who served ("default > local")."""
"""The header saying whether asking again may help (the official openai SDK obeys it)."""
RETRIED = frozenset({408, 409, 429})
"""The 4xx statuses a client may retry; any other 4xx refusal is the request's own, so it says
`x-should-retry: false`."""


class RequestError(Exception):
    """A request the gateway refuses: the status and the OpenAI error object's fields.

    `should_retry` becomes the `x-should-retry` header; None leaves it out, except on a 4xx
    outside RETRIED, which never heals by asking again.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        if should_retry is None and 400 <= status < 500 and status not in RETRIED:
            should_retry = False
        if should_retry is not None:
            self.headers[SHOULD_RETRY] = "true" if should_retry else "false"

    def body(self) -> dict[str, Any]:
        """The JSON body: `{"error": {"message", "type", "param", "code"}}`."""
        return error_body(self.message, self.type, self.param, self.code)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated `/v1/chat/completions` body."""

    model: str
    messages: CheckedMessages
    stream: bool
    include_usage: bool
    params: dict[str, Any]
    """Request parameters for the upstream (temperature, max_tokens, stream_options, ...)."""


def parse_chat(raw: bytes) -> ChatRequest:
    """Validate a request body; RequestError (400) names the parameter at fault."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, f"request body nests more than {MAX_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object")
    for key, value in body.items():
        _check_value(key, value)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "'model' is required and must be a non-empty string", param="model")
    try:
        messages = check_messages(body.get("messages"))
    except InvalidRequestError as exc:
        raise RequestError(400, str(exc), param="messages") from None
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", param="stream")
    n = body.get("n", 1)
    if n not in (1, None) or isinstance(n, bool):
        raise RequestError(400, "only n=1 is supported: the gateway returns one choice", param="n")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise RequestError(400, "'stream_options' must be an object", param="stream_options")
        include_usage = options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise RequestError(
                400,
                "'stream_options.include_usage' must be true or false",
                param="stream_options.include_usage",
            )
    params = {key: value for key, value in body.items() if key not in HANDLED}
    for key in params:
        if key in REFUSED:
            raise RequestError(
                400,
                f"parameter {key!r} is not accepted by the gateway",
                param=key,
                code="unsupported_parameter",
            )
    return ChatRequest(model, messages, stream, include_usage, params)


def _check_value(key: str, value: Any) -> None:
    """Refuse a field that nests more than MAX_DEPTH levels or holds NaN or an infinity
    (Python's json reads `NaN`, `Infinity` and `1e999`; JSON has no such numbers), naming it.

    Iterative, so the check itself cannot exhaust the stack.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise RequestError(
                400, f"{key!r} holds {item}: NaN and infinity are not JSON numbers", param=key
            )
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise RequestError(400, f"{key!r} nests more than {MAX_DEPTH} levels", param=key)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def error_body(
    message: str,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """An OpenAI-shaped error object, remembered secrets redacted from its message (every
    error the gateway sends, as a body or an event, is made here)."""
    return {"error": {"message": redact(message), "type": type, "param": param, "code": code}}


class Chunks:
    """The `chat.completion.chunk` events of one streamed answer, as SSE bytes."""

    __slots__ = ("_head", "_opened", "_tail", "_usage_head", "completion_id", "created", "model")

    def __init__(self, model: str) -> None:
        self.completion_id = new_id()
        self.created = int(time.time())
        self.model = model
        head = (
            f'{{"id": "{self.completion_id}", "object": "chat.completion.chunk", '
            f'"created": {self.created}, "model": {_string(model)}'
        )
        self._head = f'data: {head}, "choices": [{{"index": 0, "delta": '
        self._tail = "}]}\n\n"
        self._usage_head = f'data: {head}, "choices": [], "usage": '
        self._opened: dict[int, list[bool]] = {}
        """Tool-call index -> whether its id and its name were sent."""

    def first(self, event: Event) -> bytes:
        """The opening event (role) and the first event of the answer.

        As OpenAI does, the role delta has `"content": ""` when the answer begins with text and
        `"content": null` when it begins otherwise (a tool call, a refusal), so a client that
        accumulates deltas (the SDKs' stream helpers) ends with null content, not "", for an
        answer made only of tool calls, exactly as the JSON answer says.
        """
        content = '""' if isinstance(event, str) else "null"
        role = self._delta(f'{{"role": "assistant", "content": {content}}}')
        return role.encode() + self.event(event)

    def content(self, text: str) -> bytes:
        """One content delta."""
        return self._content(text).encode()

    def event(self, event: Event) -> bytes:
        """The chunk(s) of one event of the answer."""
        if isinstance(event, str):
            return self._content(event).encode()
        if isinstance(event, ToolCallDelta):
            return self._tool_call(event).encode()
        if isinstance(event, RefusalDelta):
            return self._delta(f'{{"refusal": {json.dumps(event.text)}}}').encode()
        if isinstance(event, Logprobs):
            logprobs = json.dumps(event.data)
            return (
                f'{self._head}{{}}, "logprobs": {logprobs}, "finish_reason": null{self._tail}'
            ).encode()
        return b""

    def _content(self, text: str) -> str:
        return f'{self._head}{{"content": {_string(text)}}}, "finish_reason": null{self._tail}'

    def _delta(self, delta: str) -> str:
        return f'{self._head}{delta}, "finish_reason": null{self._tail}'

    def _tool_call(self, delta: ToolCallDelta) -> str:
        """A call's opening delta (id, type, name, no arguments) and/or an argument fragment.

        Only the first delta of an index opens its call: an upstream that repeats the id and
        name in every delta (some servers do) must not make a client that concatenates deltas,
        as the SDKs do, read "call_1call_1". An id or a name that arrives only after the opening
        is sent once, on its own, by index.
        """
        index = delta.index
        sent = self._opened.get(index)
        out = ""
        if sent is None:
            call: dict[str, Any] = {"index": index}
            if delta.id is not None:
                call["id"] = delta.id
            call["type"] = delta.type
            call["function"] = {"name": delta.name or "", "arguments": ""}
            self._opened[index] = [delta.id is not None, delta.name is not None]
            out = self._delta(f'{{"tool_calls": [{_meta(call)}]}}')
        else:
            late: dict[str, Any] = {"index": index}
            if delta.id is not None and not sent[0]:
                late["id"] = delta.id
                sent[0] = True
            if delta.name is not None and not sent[1]:
                late["function"] = {"name": delta.name}
                sent[1] = True
            if len(late) > 1:
                out = self._delta(f'{{"tool_calls": [{_meta(late)}]}}')
        if delta.arguments:
            fragment = json.dumps({"index": index, "function": {"arguments": delta.arguments}})
            out += self._delta(f'{{"tool_calls": [{fragment}]}}')
        return out

    def end(self, finish_reason: str, usage: Mapping[str, Any] | None) -> bytes:
        """The final delta with `finish_reason`, the usage event when given, and `[DONE]`."""
        last = f'{self._head}{{}}, "finish_reason": {_meta(finish_reason)}{self._tail}'
        if usage is not None:
            last += f"{self._usage_head}{_meta(dict(usage))}}}\n\n"
        return last.encode() + DONE


def error_event(message: str, code: str, type: str = "upstream_error") -> bytes:
    """An SSE event carrying an error object (the stream ends after it, without [DONE])."""
    return f"data: {json.dumps(error_body(message, type, None, code))}\n\n".encode()


def completion(
    model: str,
    message: AssistantMessage,
    finish_reason: str,
    usage: Mapping[str, Any] | None,
    logprobs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole `chat.completion` object (its metadata redacted, as in `Chunks`)."""
    shown: dict[str, Any] = dict(message)
    if "tool_calls" in message:
        shown["tool_calls"] = [_redacted_call(call) for call in message["tool_calls"]]
    choice: dict[str, Any] = {
        "index": 0,
        "message": shown,
        "finish_reason": json.loads(_meta(finish_reason)),
    }
    if logprobs is not None:
        choice["logprobs"] = dict(logprobs)
    body: dict[str, Any] = {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }
    if usage is not None:
        body["usage"] = json.loads(_meta(dict(usage)))
    return body


def _meta(value: Any) -> str:
    """`value` as JSON with the remembered secrets redacted: for what an upstream sends besides
    the answer's text, which clients must not receive a key in."""
    return redact(json.dumps(value))


def _redacted_call(call: Any) -> Any:
    """A tool call of a whole answer with its id and name redacted (its arguments are the
    answer's own text)."""
    function = dict(call["function"])
    function["name"] = json.loads(_meta(function["name"]))
    return {**call, "id": json.loads(_meta(call["id"])), "function": function}


def new_id() -> str:
    """A fresh completion id, "chatcmpl-" and 24 hex digits."""
    return f"chatcmpl-{secrets.token_hex(12)}"
