"""FakeUpstream, the scripted server on 127.0.0.1, and the loop in a thread that serves it to
code on any loop or none (`UpstreamFactory`, `serve_in_thread`)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ._render import DIALECTS, Pause, Piece, Stop, response
from ._reply import Reply, WireFormat


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the upstream received."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    body: bytes


class FakeUpstream:
    """A scripted server on 127.0.0.1 answering POST on any path in one wire format; see the
    `providerhub.testing` docstring."""

    def __init__(
        self, *script: Reply, default: Reply | None = None, wire: WireFormat = "openai"
    ) -> None:
        if wire not in DIALECTS:
            raise ValueError(f"unknown wire format {wire!r}: one of {', '.join(DIALECTS)}")
        self._script: deque[Reply] = deque(script)
        self.default = default
        self.wire: WireFormat = wire
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
        app.router.add_get("/models", self._models)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/{path:.*}", self._chat)
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
        except asyncio.CancelledError:
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
        dialect = DIALECTS[self.wire]
        if reply.status >= 400:
            error = dialect.error(reply.status, reply.error_type, reply.message)
            return web.Response(
                status=reply.status,
                text=dialect.encode(error) if reply.body is None else reply.body,
                headers=reply.headers,
                content_type="application/json",
            )
        try:
            content_type, pieces = response(reply, payload, self.wire)
        except ValueError as exc:
            return web.Response(status=500, text=f"FakeUpstream: {exc}")
        answer = web.StreamResponse(
            status=reply.status, headers={"Content-Type": content_type, **reply.headers}
        )
        try:
            await answer.prepare(request)
            await self._write(request, answer, pieces)
        except ConnectionResetError:  # the client went away mid-answer: counted, not logged
            self.disconnects += 1
        return answer

    async def _write(
        self, request: web.Request, answer: web.StreamResponse, pieces: Iterable[Piece]
    ) -> None:
        for piece in pieces:
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
                return
            await answer.write(piece)
        await answer.write_eof()


class UpstreamFactory:
    """Starts FakeUpstreams on an event loop of its own, in a thread, so they answer code on
    any loop (pytest-asyncio's, anyio's, the kit's own) or on none; `close()` closes them all.

    What the `fake_upstream` fixture is: `await fake_upstream(...)` in an async test,
    `fake_upstream.serve(...)` in a sync one.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-upstream", daemon=True
        )
        self._thread.start()
        self._started: list[FakeUpstream] = []

    async def __call__(
        self, *script: Reply, default: Reply | None = None, wire: WireFormat = "openai"
    ) -> FakeUpstream:
        """Start a FakeUpstream with this script (awaited from any event loop)."""
        upstream = FakeUpstream(*script, default=default, wire=wire)
        return await asyncio.wrap_future(self._start(upstream))

    def serve(
        self, *script: Reply, default: Reply | None = None, wire: WireFormat = "openai"
    ) -> FakeUpstream:
        """Start a FakeUpstream with this script, from synchronous code."""
        return self._start(FakeUpstream(*script, default=default, wire=wire)).result()

    def _start(self, upstream: FakeUpstream) -> Future[FakeUpstream]:
        self._started.append(upstream)
        return asyncio.run_coroutine_threadsafe(upstream.start(), self._loop)

    def close(self) -> None:
        """Close every upstream started here, then the loop and its thread."""
        try:
            for upstream in self._started:
                asyncio.run_coroutine_threadsafe(upstream.close(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> UpstreamFactory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def serve_in_thread(
    *script: Reply, default: Reply | None = None, wire: WireFormat = "openai"
) -> Iterator[FakeUpstream]:
    """Run a FakeUpstream on its own event loop in a thread (for benchmarks and sync code)."""
    with UpstreamFactory() as factory:
        yield factory.serve(*script, default=default, wire=wire)
