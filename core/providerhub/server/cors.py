"""CORS for browser clients (`[server] cors_origins`): the allowed origins get
`Access-Control-Allow-Origin` on every answer and their preflight `OPTIONS` answered; any other
origin gets no CORS headers at all (the browser then refuses the answer to its page).

A preflight is answered 204 before auth (a browser sends it without the key), allowing the
methods the gateway serves, `Authorization`, `Content-Type` and whatever other headers the page
asked for (SDKs send their own `x-` headers), cached `MAX_AGE` seconds.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from .wire import PROVIDER_HEADER, ROUTE_HEADER, SHOULD_RETRY

ORIGINS = web.AppKey("cors_origins", frozenset[str])
ANY = "*"
MAX_AGE = 600
METHODS = "GET, POST, OPTIONS"
ALWAYS_ALLOWED = ("Authorization", "Content-Type")
EXPOSED = ", ".join((PROVIDER_HEADER, ROUTE_HEADER, SHOULD_RETRY, "Retry-After"))
"""The answer headers a page's script may read: who served, and the SDKs' retry hints."""
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, origins: tuple[str, ...]) -> None:
    """Answer preflights and add the CORS headers for `origins` ("*": any); none: nothing."""
    if not origins:
        return
    app[ORIGINS] = frozenset(origins)
    app.on_response_prepare.append(_allow)


def allowed(request: web.Request) -> str | None:
    """The value of `Access-Control-Allow-Origin` for this request, or None (no CORS)."""
    origins = request.app.get(ORIGINS)
    origin = request.headers.get("Origin")
    if origins is None or origin is None:
        return None
    if ANY in origins:
        return ANY
    return origin if origin in origins else None


@web.middleware
async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An allowed origin's `OPTIONS` with `Access-Control-Request-Method`: 204, before auth."""
    if (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
        and allowed(request) is not None
    ):
        asked = request.headers.get("Access-Control-Request-Headers", "")
        extra = [name.strip() for name in asked.split(",") if TOKEN.match(name.strip())]
        known = {name.lower() for name in ALWAYS_ALLOWED}
        headers = [*ALWAYS_ALLOWED, *(name for name in extra if name.lower() not in known)]
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": METHODS,
                "Access-Control-Allow-Headers": ", ".join(headers),
                "Access-Control-Max-Age": str(MAX_AGE),
            },
        )
    return await handler(request)


async def _allow(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer (JSON, SSE, errors, preflights) to an allowed origin names it; unless any
    origin is allowed, every answer varies by Origin (a cache must not hand one origin's answer
    to another)."""
    if ANY not in request.app[ORIGINS]:
        response.headers.add("Vary", "Origin")
    origin = allowed(request)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
