"""Running the gateway until SIGINT or SIGTERM, then shutting down gracefully.

Errors aiohttp answers itself, before any handler or middleware runs (a request its parser
refuses: oversize headers, Content-Length with Transfer-Encoding, a bad request line), get the
OpenAI error shape too while the connection still allows an answer.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from http import HTTPStatus

from aiohttp import web, web_protocol
from aiohttp.web_request import BaseRequest

from .wire import error_body

GRACE = 5.0
"""Seconds in-flight answers get to finish after a stop signal before they are cancelled."""


async def start(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, grace: float = GRACE
) -> tuple[web.AppRunner, str]:
    """Listen on host:port (0: any free port); the runner and the bound base URL.

    Handlers are cancelled when their client disconnects, which closes the upstream stream at
    once. `runner.cleanup()` stops accepting, lets in-flight requests finish for up to `grace`
    seconds, then cancels them and closes every connection.
    """
    runner = _Runner(app, handler_cancellation=True, shutdown_timeout=grace, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"


async def serve(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    grace: float = GRACE,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve `app` until SIGINT or SIGTERM; `ready` gets the bound URL once it listens."""
    runner, url = await start(app, host, port, grace=grace)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        if ready is not None:
            ready(url)
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await runner.cleanup()


class _Handler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering the errors it raises itself as OpenAI-shaped
    JSON instead of plain text (aiohttp logs them and closes the connection, as before)."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises once bytes went out
        client = status < 500
        reason = message if client and message else HTTPStatus(status).phrase
        kind = "invalid_request_error" if client else "server_error"
        response = web.json_response(error_body(reason, kind), status=status)
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    """An AppRunner whose connections use `_Handler`.

    aiohttp has no public way to choose the connection handler's class: this one override of
    the runner's server factory is the whole hook (aiohttp builds the Server; only its class
    changes, to one that adds nothing but the handler it makes).
    """

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server
