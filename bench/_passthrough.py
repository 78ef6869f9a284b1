"""The floor of any aiohttp gateway: a pass-through proxy that parses nothing.

`POST /<index>/v1/chat/completions` sends the request body to upstream number `index` with one
pooled aiohttp session and copies the answer's bytes to the client as they arrive: no JSON, no
SSE framing, no routing, no checks. Its CPU per request and its added time to first chunk are
what aiohttp's server and client cost by themselves on this machine, so the gateway's figures
can be read against them.

    python bench/_passthrough.py URL [URL ...]     # prints "serving http://127.0.0.1:PORT"
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)


def make_app(upstreams: list[str]) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        url = f"{upstreams[int(request.match_info['index'])]}/v1/chat/completions"
        body = await request.read()
        headers = {"Content-Type": "application/json"}
        async with request.app[SESSION].post(url, data=body, headers=headers) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={"Content-Type": upstream.headers.get("Content-Type", "")},
            )
            await response.prepare(request)
            async for piece in upstream.content.iter_any():
                await response.write(piece)
            await response.write_eof()
            return response

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as opened:
            app[SESSION] = opened
            yield

    app = web.Application()
    app.router.add_post(r"/{index:\d+}/v1/chat/completions", forward)
    app.cleanup_ctx.append(session)
    return app


async def main(upstreams: list[str]) -> None:
    runner = web.AppRunner(make_app(upstreams), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"serving http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
