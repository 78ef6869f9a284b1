"""Running the gateway until SIGINT or SIGTERM, then shutting down gracefully."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

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
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=grace, access_log=None)
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
