"""Running the gateway until SIGINT or SIGTERM, then shutting down in exactly the grace.

Connections are bounded in time: a request (its head and body) must arrive whole within
`request_timeout` seconds of its first byte, and a new connection must send one within that
time, else a 408 (OpenAI-shaped JSON while nothing was answered on it yet) and the connection
is closed; an idle keep-alive connection is closed after `KEEPALIVE` seconds.

A stop (`runner.cleanup()`) stops accepting and closes idle connections, gives the answers in
flight exactly `grace` seconds (`limits.Drain`), then cuts the rest: a stream ends with an SSE
error event, an answer not begun is a 503. aiohttp's own shutdown timeout then only bounds
stragglers (`limits.CUT_LIMIT`): used as the grace, it is waited twice (once for handlers to
finish, once more after cancelling them), which made a 5 s grace last 10 s.

Errors aiohttp answers itself, before any handler or middleware runs (a request its parser
refuses: oversize headers, Content-Length with Transfer-Encoding, a bad request line), get the
OpenAI error shape too while the connection still allows an answer; a client gone while its
answer was written is only the access line's 499, never an error traceback. Such an error
answer ends with a lingering close (`LINGER`): the client may still be sending. A stop ends a
linger at once, and none begins once a stop has begun.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import suppress
from http import HTTPStatus
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_request import BaseRequest

from ..config import ServerSettings
from .app import DRAIN
from .limits import CUT_LIMIT, RequestTimeout
from .wire import error_body

log = logging.getLogger("providerhub.server")

GRACE = ServerSettings().shutdown_grace
"""Seconds in-flight answers get to finish after a stop signal before they are cut."""
REQUEST_TIMEOUT = ServerSettings().request_timeout
"""Seconds a request may take to arrive whole (head and body)."""
KEEPALIVE = 30.0
"""Seconds an idle keep-alive connection stays open: longer than clients keep theirs (httpx 5 s,
aiohttp 15 s), so the client closes first and never sends on a connection being closed."""
LINGER = 2.0
"""Seconds a connection closed on a request not received whole goes on reading (and dropping)
after its error answer, until the client closes too: closing a socket with bytes unread makes
the kernel send a reset, which can destroy the answer before the client reads it."""


async def start(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    grace: float = GRACE,
    request_timeout: float = REQUEST_TIMEOUT,
) -> tuple[web.AppRunner, str]:
    """Listen on host:port (0: any free port); the runner and the bound base URL.

    Handlers are cancelled when their client disconnects, which closes the upstream stream at
    once. `runner.cleanup()` stops accepting, gives in-flight answers `grace` seconds, then
    cuts the rest (see the module docstring) and closes every connection.
    """
    runner = _Runner(
        app,
        grace=grace,
        handler_cancellation=True,
        shutdown_timeout=CUT_LIMIT,
        access_log=None,
        keepalive_timeout=KEEPALIVE,
        request_timeout=request_timeout,
    )
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
    request_timeout: float = REQUEST_TIMEOUT,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve `app` until SIGINT or SIGTERM; `ready` gets the bound URL once it listens."""
    runner, url = await start(app, host, port, grace=grace, request_timeout=request_timeout)
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
    """aiohttp's connection handler, with the request deadline, and answering the errors it
    raises itself as OpenAI-shaped JSON instead of plain text.

    The deadline is armed at the first byte of a request (and when the connection opens), and
    disarmed once the request's head and body have arrived (`_receiving` is the body still
    arriving). On expiry a body still arriving fails the handler's read with `RequestTimeout`;
    a head still arriving is answered 408 by the error path aiohttp uses for a bad request.
    """

    __slots__ = ("_client_done", "_deadline", "_linger", "_receiving", "_request_timeout")

    def __init__(self, manager: web.Server, *, request_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._request_timeout = request_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._receiving: StreamReader | None = None
        self._linger = False
        self._client_done: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        count = self._request_count
        super().data_received(data)
        if self._request_count != count and self._messages:
            self._receiving = self._messages[-1][1]
        if self._receiving is not None and self._receiving.is_eof():
            self._receiving = None
            self._disarm()
        elif data and self._deadline is None and not (self._close or self._force_close):
            self._arm()

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio's: bool | None
        """Keep a lingering connection open once the client is done: `start` closes it."""
        if self._client_done is None:
            return False
        self._end_linger()
        return True

    def _end_linger(self) -> None:
        if self._client_done is not None and not self._client_done.done():
            self._client_done.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._receiving = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        """Start the request's clock; the connection is no longer idle (no keep-alive close)."""
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        self._deadline = self._loop.call_later(self._request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        log.info("request not received within %gs: closing the connection", self._request_timeout)
        timeout = RequestTimeout(self._request_timeout)
        if self._receiving is not None:
            self._receiving.set_exception(timeout)
            self._receiving = None
        elif self._waiter is not None and not self._waiter.done():
            error = web_protocol._ErrInfo(status=408, exc=timeout, message=timeout.message)
            self._messages.append((error, EMPTY_PAYLOAD))
            self._waiter.set_result(None)
        self._linger = True
        self.close()

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """Send the answer; after one to a request not received whole, a lingering close."""
        sent = await super().finish_response(request, resp, start_time)
        if self._linger and self.transport is not None:
            await self._drop_the_rest()
        return sent

    async def _drop_the_rest(self) -> None:
        """Half-close (the client reads the answer, then our end), and drop what the client
        still sends until it closes too, `LINGER` seconds pass or the gateway stops."""
        assert self.transport is not None
        if self._force_close:  # stopping: no linger begins
            return
        self._disarm()
        self.close()  # what still arrives is dropped, never parsed
        self._client_done = self._loop.create_future()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        with suppress(TimeoutError):
            async with asyncio.timeout(LINGER):
                await self._client_done

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """A stop ends a linger at once: it must not hold the shutdown (`limits.CUT_LIMIT`)."""
        self._end_linger()
        await super().shutdown(timeout)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):
            raise exc  # the client went away mid-answer: the access line says 499, that is all
        if status >= 500:
            super().handle_error(request, status, exc, message)  # logs; raises once bytes went out
        elif request.writer.output_size > 0:
            raise ConnectionError("an answer was already sent on this connection")
        else:
            self._linger = True  # the client may still be sending the request refused
            if not isinstance(exc, RequestTimeout):
                # A request the parser refused is the client's fault: one line, no traceback,
                # so bad requests cannot flood the log with errors.
                log.info("bad request from %s: %s", request.remote, (message or "").split("\n")[0])
        client = status < 500
        reason = message if client and message else HTTPStatus(status).phrase
        kind = "invalid_request_error" if client else "server_error"
        code = exc.code if isinstance(exc, RequestTimeout) else None
        response = web.json_response(error_body(reason, kind, None, code), status=status)
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    """An AppRunner whose connections use `_Handler`, and whose shutdown drains the app.

    aiohttp has no public way to choose the connection handler's class: this one override of
    the runner's server factory is the whole hook (aiohttp builds the Server; only its class
    changes, to one that adds nothing but the handler it makes).
    """

    def __init__(self, app: web.Application, *, grace: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._grace = grace

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server

    async def shutdown(self) -> None:
        """Called once the sites stopped accepting and idle connections closed."""
        await super().shutdown()
        await self.app[DRAIN].close(self._grace)
