"""Loopback fake upstreams with scripted faults, for tests, demos and plugin authors.

`FakeUpstream` is a real aiohttp server on 127.0.0.1 (port 0). It answers POST on any path
(and `GET /models`, `/v1/models`), records each request (`requests`: method, path, headers,
JSON body) and answers it with the next `Reply` of its script, so a test says, in order, what
the upstream will do::

    async with FakeUpstream(Reply.error(500), Reply.text("Hel", "lo")) as upstream:
        ...  # first request gets HTTP 500, the second streams "Hello"
    upstream.requests[1].json["messages"]

Wire formats, one per upstream (`FakeUpstream(..., wire=...)`, default "openai"):

- "openai": chat-completions SSE, `data: {chat.completion.chunk}` ... `data: [DONE]`; a request
  with `"stream": false` gets the `chat.completion`.
- "anthropic": Messages SSE with named events: `message_start`, per content block
  `content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta`) /
  `content_block_stop` (a `ping` after the first start), `message_delta` (stop_reason,
  output_tokens), `message_stop`. Streamed only when the request says `"stream": true`,
  else `{"type": "message", "content": [...], "stop_reason", "usage"}`. Errors have
  Anthropic's body (`{"type": "error", "error": {"type": "overloaded_error", ...}}`, the type
  from the status); `finish_reason` translates to stop_reason (stop -> end_turn, length ->
  max_tokens, tool_calls -> tool_use, others as given: "refusal", "stop_sequence" with
  `stop_sequence`); `usage` is Anthropic's (cache tokens too).
- "ndjson": Ollama's /api/chat, one JSON object a line: `{"message": {"content": ...},
  "done": false}` ..., then `{"done": true, "done_reason", **usage}`; tool calls whole, with
  arguments as an object; `"stream": false` gets the single object.

Answers: `Reply.text`, `Reply.tool_call` (several calls, arguments in fragments; OpenAI can
interleave them), `Reply.refusal_text`, option `logprobs` (OpenAI); `Reply.events` sends event
datas verbatim, nothing added. Faults, in every format: `Reply.error` (status, headers,
Retry-After), `hang`, `hang_after_chunks`, `close_after_chunks`, `malformed_after_chunks`,
`error_after_chunks` (an in-stream error event), `keepalive_trickle`, `huge_line`, and options
`split` (awkward TCP reads), `line_ending`, `keepalive`, `delay`, `done`, `after_done`, `end`.
`Reply.raw_bytes` sends hand-made bytes; `Reply.wire(payload, wire)` renders a stream once.
A connection refused is a port nobody listens on (a closed upstream's).

pytest: installing providerhub registers this module as a pytest plugin (entry point
"pytest11"; in this repository also `pytest_plugins = ["providerhub.testing"]`). Its fixture
`fake_upstream` is an `UpstreamFactory`: `await fake_upstream(Reply.text("hi"), wire=...)`
in an async test, `fake_upstream.serve(...)` in a sync one. Its upstreams run on a loop of
their own in a thread, so they work under any async plugin, and an `async def` test that
requests `fake_upstream` and that no plugin runs gets a fresh event loop from this one: no
pytest-asyncio configuration is needed. `serve_in_thread` does the same for code outside
pytest. `providerhub.testing.conformance` checks a provider against the plugin contract.
"""

from ._reply import LineEnding, Reply, ToolCallScript, WireFormat
from ._server import FakeUpstream, RecordedRequest, UpstreamFactory, serve_in_thread

__all__ = [
    "FakeUpstream",
    "LineEnding",
    "RecordedRequest",
    "Reply",
    "ToolCallScript",
    "UpstreamFactory",
    "WireFormat",
    "serve_in_thread",
]

try:
    from ._plugin import fake_upstream, pytest_pyfunc_call
except ImportError:  # pragma: no cover - only the pytest plugin needs pytest
    pass
else:
    __all__ += ["fake_upstream", "pytest_pyfunc_call"]
