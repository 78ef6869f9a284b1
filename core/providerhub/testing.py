"""Loopback fake upstreams with scripted faults, for tests, demos and plugin authors.

`FakeUpstream` is a real aiohttp server on 127.0.0.1 (port 0) speaking the chat-completions
wire format that both CodeLinkAva (`POST /api/chat`) and OpenAI-compatible servers
(`POST /chat/completions`, `/v1/chat/completions`, `GET /models`) use. Each request takes the
next `Reply` of its script, so a test says, in order, what the upstream will do::

    async with FakeUpstream(Reply.error(500), Reply.text("Hel", "lo")) as upstream:
        ...  # first request gets HTTP 500, the second streams "Hello"
    upstream.requests[1].json["messages"]

Answers: `Reply.text`, `Reply.tool_call` (OpenAI's streamed tool-call deltas, optionally
interleaved), `Reply.refusal_text`, option `logprobs`; `Reply.events` sends events verbatim,
nothing added. A request with `"stream": false` gets the equivalent `chat.completion`.
Faults: `Reply.error/hang/hang_after_chunks/close_after_chunks/malformed_after_chunks/
keepalive_trickle/huge_line`, and options `split`, `line_ending`, `keepalive`, `delay`, `done`,
`after_done`, `end`. `Reply.raw_bytes` sends hand-made bytes; `Reply.wire()` renders a stream
once (benchmarks serve it with `serve_in_thread`, which also suits synchronous code).
With pytest, add `pytest_plugins = ["providerhub.testing"]` and use the `fake_upstream` fixture.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from ._fake_wire import Pause, Stop, completion, pieces

CHAT_PATHS = ("/api/chat", "/chat/completions", "/v1/chat/completions")
LineEnding = Literal["\n", "\r\n", "\r"]


@dataclass(frozen=True, slots=True)
class ToolCallScript:
    """One function call a scripted answer makes; an empty `id` is sent as `call_<index>`."""

    name: str
    arguments: str
    id: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the upstream does with one request. Build one with the class methods."""

    chunks: tuple[str, ...] = ()
    status: int = 200
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang_before_headers: bool = False
    hang_after: int | None = None
    """Stall after this many deltas (content, tool-call and refusal ones) or scripted events."""
    close_after: int | None = None
    malformed_after: int | None = None
    delay: float = 0.0
    """Seconds to wait before each chunk (slow chunks)."""
    split: int | None = None
    """Write the stream in pieces of this many bytes, pausing between them (awkward TCP reads)."""
    line_ending: LineEnding = "\n"
    keepalive: bool = False
    """Send an SSE comment line before each event, as proxies do."""
    done: bool = True
    """Send `data: [DONE]` at the end."""
    finish_reason: str | None = "stop"
    model: str = "fake-model"
    usage: Mapping[str, int] | None = None
    """Token counts sent as a final chunk when the request asks `stream_options.include_usage`."""
    after_done: tuple[str, ...] = ()
    """Event data sent after `[DONE]` (a client must never read it)."""
    end: Literal["eof", "hang", "close"] = "eof"
    """After the last event: end the response, stall with it open, or drop the connection."""
    trickle: float | None = None
    """Send only SSE keep-alive comments, one every this many seconds, and never any text."""
    raw: bytes | None = None
    """Send these bytes verbatim as the body (cut by `split`) instead of rendering events."""
    tool_calls: tuple[ToolCallScript, ...] = ()
    """Function calls streamed after the content, as OpenAI's `delta.tool_calls`."""
    argument_fragment: int = 8
    """Characters per streamed piece of tool-call arguments and of a refusal."""
    interleave_tool_calls: bool = False
    """Send the calls' argument pieces round-robin after all their first deltas."""
    refusal: str | None = None
    """A refusal streamed as `delta.refusal` pieces after the content."""
    logprobs: bool = False
    """Give each content chunk a logprobs entry (streamed and non-streamed)."""
    verbatim_events: tuple[str, ...] | None = None
    """Send exactly these event datas: no role chunk, final chunk, usage or `[DONE]`."""

    def __post_init__(self) -> None:
        if self.argument_fragment < 1:
            raise ValueError("argument_fragment must be at least 1")

    @classmethod
    def text(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks` as content deltas, then `[DONE]`."""
        return cls(chunks=tuple(chunks), **options)

    @classmethod
    def tool_call(
        cls,
        *calls: ToolCallScript | tuple[str, str],
        text: str = "",
        fragment: int = 8,
        **options: Any,
    ) -> Reply:
        """Stream `text` if any, then each call (a script or `(name, arguments)`) as OpenAI
        does: a delta with id and name, then the arguments in `fragment`-character deltas.
        `finish_reason` is "tool_calls" unless given."""
        scripts = tuple(c if isinstance(c, ToolCallScript) else ToolCallScript(*c) for c in calls)
        options.setdefault("finish_reason", "tool_calls")
        chunks = (text,) if text else ()
        return cls(chunks=chunks, tool_calls=scripts, argument_fragment=fragment, **options)

    @classmethod
    def refusal_text(cls, text: str, **options: Any) -> Reply:
        """Stream a refusal as `delta.refusal` pieces of `argument_fragment` characters."""
        return cls(refusal=text, **options)

    @classmethod
    def events(cls, *data: Mapping[str, Any] | str, **options: Any) -> Reply:
        """Send each item as one event's data, a mapping as JSON and a string as it is, and
        nothing else (no role chunk, final chunk or `[DONE]`). Stream options still apply; the
        non-streamed answer merges the deltas of the events that are chunks."""
        datas = tuple(item if isinstance(item, str) else json.dumps(dict(item)) for item in data)
        return cls(verbatim_events=datas, **options)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "upstream error",
        *,
        retry_after: str | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An HTTP error with an OpenAI-shaped body (or `body` verbatim), maybe Retry-After."""
        merged = dict(headers or {})
        if retry_after is not None:
            merged["Retry-After"] = retry_after
        if body is None:
            body = json.dumps({"error": {"message": message, "type": "fake_error", "code": status}})
        return cls(status=status, body=body, headers=merged)

    @classmethod
    def hang(cls) -> Reply:
        """Accept the request and never send headers."""
        return cls(hang_before_headers=True)

    @classmethod
    def hang_after_chunks(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks`, then stall forever with the connection open."""
        return cls(chunks=chunks, hang_after=len(chunks), **options)

    @classmethod
    def close_after_chunks(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks`, then drop the connection without ending the response."""
        return cls(chunks=chunks, close_after=len(chunks), **options)

    @classmethod
    def malformed_after_chunks(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks`, then an event whose data is not JSON."""
        return cls(chunks=chunks, malformed_after=len(chunks), **options)

    @classmethod
    def empty(cls) -> Reply:
        """A successful stream with no content at all, just `[DONE]`."""
        return cls(finish_reason=None)

    @classmethod
    def keepalive_trickle(cls, interval: float = 0.05) -> Reply:
        """Answer 200 and send keep-alive comments forever: bytes flow, text never comes."""
        return cls(trickle=interval)

    @classmethod
    def raw_bytes(cls, body: bytes, **options: Any) -> Reply:
        """Send `body` verbatim (e.g. a pre-rendered stream from `wire()`, or hand-made bytes)."""
        return cls(raw=body, **options)

    def wire(self, payload: Mapping[str, Any] | None = None) -> bytes:
        """The whole streamed body this reply sends, pauses and faults left out."""
        if self.trickle is not None:
            raise ValueError("a keep-alive trickle has no end")
        return b"".join(piece for piece in pieces(self, payload or {}) if isinstance(piece, bytes))

    @classmethod
    def huge_line(cls, size: int = 256 * 1024) -> Reply:
        """One content chunk of `size` characters: an event line larger than any read buffer."""
        return cls(chunks=("x" * size,))


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the upstream received."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    body: bytes


class FakeUpstream:
    """A scripted chat-completions server on 127.0.0.1; see the module docstring."""

    def __init__(self, *script: Reply, default: Reply | None = None) -> None:
        self._script: deque[Reply] = deque(script)
        self.default = default
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        """Requests whose client went away before the reply was complete."""
        self.active = 0
        """Requests being answered right now."""
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (OpenAI-style base_url: `url + "/v1"`)."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Queue more replies, answered in order after the ones already queued."""
        self._script.extend(replies)

    async def start(self) -> FakeUpstream:
        app = web.Application()
        for path in CHAT_PATHS:
            app.router.add_post(path, self._chat)
        app.router.add_get("/models", self._models)
        app.router.add_get("/v1/models", self._models)
        self._release = asyncio.Event()
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.headers), payload, body)
        )
        reply = self._script.popleft() if self._script else self.default
        if reply is None:
            reply = Reply.error(500, "FakeUpstream: script exhausted")
        self.active += 1
        try:
            return await self._answer(request, reply, payload if isinstance(payload, dict) else {})
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            raise
        finally:
            self.active -= 1

    async def _answer(
        self, request: web.Request, reply: Reply, payload: dict[str, Any]
    ) -> web.StreamResponse:
        if reply.hang_before_headers:
            await self._release.wait()
            return web.Response(status=503, text="FakeUpstream closed")
        if reply.status >= 400:
            return web.Response(
                status=reply.status,
                text=reply.body or "",
                headers=reply.headers,
                content_type="application/json",
            )
        if payload.get("stream") is False:
            return web.json_response(completion(reply, payload), headers=reply.headers)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", **reply.headers}
        )
        await response.prepare(request)
        for piece in pieces(reply, payload):
            if isinstance(piece, Pause):
                if self._release.is_set():
                    break
                if piece.seconds:
                    await asyncio.sleep(piece.seconds)
                continue
            if isinstance(piece, Stop):
                if piece.how == "hang":
                    await self._release.wait()
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write(piece)
        await response.write_eof()
        return response


@contextmanager
def serve_in_thread(*script: Reply, default: Reply | None = None) -> Iterator[FakeUpstream]:
    """Run a FakeUpstream on its own event loop in a thread (for benchmarks and sync code)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-upstream", daemon=True)
    thread.start()

    async def start() -> FakeUpstream:
        return await FakeUpstream(*script, default=default).start()

    upstream: FakeUpstream | None = None
    try:
        upstream = asyncio.run_coroutine_threadsafe(start(), loop).result()
        yield upstream
    finally:
        if upstream is not None:
            asyncio.run_coroutine_threadsafe(upstream.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


try:
    import pytest
    import pytest_asyncio
except ImportError:  # pragma: no cover - only the fixture needs pytest
    pass
else:

    @pytest_asyncio.fixture
    async def fake_upstream() -> AsyncIterator[Any]:
        """Factory fixture: `await fake_upstream(Reply.text("hi"))` starts one; all close after."""
        started: list[FakeUpstream] = []

        async def make(*script: Reply, default: Reply | None = None) -> FakeUpstream:
            upstream = await FakeUpstream(*script, default=default).start()
            started.append(upstream)
            return upstream

        yield make
        for upstream in started:
            await upstream.close()

    del pytest
