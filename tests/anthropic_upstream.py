"""A scripted Anthropic Messages server on 127.0.0.1 for the anthropic plugin's tests.

A real aiohttp server (port 0) that answers every request, whatever its path, with the next
`Scripted` answer and records what it received, so tests see the exact path, headers and body
the provider sent. Answers are bytes made by `anthropic_helpers` (named-event SSE, a JSON
message, an error body), optionally written a few bytes at a time.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from anthropic_helpers import error_body, sse


@dataclass(frozen=True, slots=True)
class Scripted:
    """What the server does with one request."""

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    headers: Mapping[str, str] = field(default_factory=dict)
    split: int | None = None
    """Write the body in pieces of this many bytes, pausing between them (awkward reads)."""
    delay: float = 0.0
    """Seconds to wait before sending the headers."""

    @classmethod
    def streamed(cls, payloads: Sequence[Mapping[str, Any]], **options: Any) -> Scripted:
        return cls(sse(payloads), **options)

    @classmethod
    def message(cls, message: Mapping[str, Any]) -> Scripted:
        return cls(json.dumps(message).encode(), content_type="application/json")

    @classmethod
    def error(
        cls, status: int, kind: str, message: str, *, retry_after: str | None = None
    ) -> Scripted:
        headers = {} if retry_after is None else {"retry-after": retry_after}
        body = error_body(kind, message).encode()
        return cls(body, status=status, content_type="application/json", headers=headers)


@dataclass(frozen=True, slots=True)
class Received:
    """One request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any


class MessagesUpstream:
    """The server: `async with MessagesUpstream(Scripted..., ...) as up:`; `up.url` is its
    base URL (the API root), `up.requests` what it received, in order."""

    def __init__(self, *script: Scripted) -> None:
        self._script = deque(script)
        self.requests: list[Received] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *answers: Scripted) -> None:
        self._script.extend(answers)

    async def __aenter__(self) -> MessagesUpstream:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            Received(request.method, request.path, dict(request.headers), json.loads(raw or "null"))
        )
        if not self._script:
            return web.Response(status=500, text=error_body("api_error", "script exhausted"))
        answer = self._script.popleft()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        response = web.StreamResponse(
            status=answer.status, headers={"Content-Type": answer.content_type, **answer.headers}
        )
        await response.prepare(request)
        size = answer.split or len(answer.body) or 1
        for start in range(0, len(answer.body), size):
            await response.write(answer.body[start : start + size])
            if answer.split:
                await asyncio.sleep(0.0005)
        await response.write_eof()
        return response
