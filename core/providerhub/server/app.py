"""The aiohttp application: routes, auth, access log, admission, and streaming answers as SSE.

See the package docstring for the behaviour; this module wires it to aiohttp.web.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from .. import capabilities as capability
from .. import pool
from ..config import ServerSettings
from ..errors import (
    AllProvidersFailedError,
    ConfigError,
    InvalidRequestError,
    StreamInterruptedError,
    UnsupportedCapabilityError,
)
from ..events import Event
from ..redaction import remember
from ..routing.stream import ChatStream
from . import cors, status, wire
from .limits import MAX_BODIES, MAX_BODY, Admission, Drain, Held, ShutDown, Stalls
from .resolve import Target, Targets
from .wire import PROVIDER_HEADER, ROUTE_HEADER

if TYPE_CHECKING:
    from ..config import Config
    from ..registry import Registry
    from ..routing.health import HealthStore, ProviderHealth
    from .metrics import Metrics

log = logging.getLogger("providerhub.server")

TARGETS = web.AppKey("targets", Targets)
API_KEY = web.AppKey("api_key", bytes)
ADMISSION = web.AppKey("admission", Admission)
DRAIN = web.AppKey("drain", Drain)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
"""The app's metrics, with `[server] metrics = true` (`providerhub.server.metrics`)."""
STALLS = web.AppKey("stalls", Stalls)
HELD = web.RequestKey("held", Held)
"""What an admitted request holds of the body budget (its body is read through it)."""
SSE = web.RequestKey("sse", web.StreamResponse)
"""The SSE answer of a request once its headers went out (a cut stream ends inside it)."""
SERVED_BY: contextvars.ContextVar[str] = contextvars.ContextVar("served_by", default="-")
"""The provider serving the current request, for its access log line (same task)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    registry: Registry,
    config: Config | None = None,
    *,
    api_key: str | None = None,
    health: HealthStore | None = None,
    default_chain: str | None = None,
) -> web.Application:
    """The gateway for `registry` (plugins plus the config's instances) and `config`.

    `api_key` (the value, read by the caller from the variable `[server] api_key_env` names)
    makes every `/v1/` route require `Authorization: Bearer <api_key>`; it is remembered as a
    secret (`redaction.remember`), so no log line or answer shows it. `health` defaults to the
    store shared by the process; `default_chain` overrides `[server] chain`. The config's
    `[server]` limits and CORS origins apply (see `limits`, `cors`), and its `metrics` adds
    `GET /metrics`. Chains are built here, so a bad chain or default is a ConfigError before
    anything listens (so is `metrics = true` without prometheus-client).
    """
    settings = config.server if config is not None else ServerSettings()
    app = web.Application(
        middlewares=[_access_log, _errors, cors.preflight, _auth, _admit],
        client_max_size=MAX_BODY,
    )
    app[TARGETS] = Targets(registry, config, health=health, default_chain=default_chain)
    app[ADMISSION] = Admission(settings.max_concurrent_requests, MAX_BODIES)
    app[DRAIN] = Drain()
    app[STALLS] = Stalls()
    cors.install(app, settings.cors_origins)
    if api_key is not None:
        remember(api_key)
        app[API_KEY] = api_key.encode()
    if settings.metrics:
        app[METRICS] = _metrics(config)
    for method, path, handler in served(app):
        if method == "GET":
            app.router.add_get(path, handler)  # HEAD too, as load balancers probe with it
        else:
            app.router.add_route(method, path, handler)
    app.on_cleanup.append(_close)
    return app


def _metrics(config: Config | None) -> Metrics:
    try:
        from .metrics import Metrics
    except ImportError:
        message = "'metrics' = true needs prometheus-client: pip install 'providerhub[metrics]'"
        path = None if config is None else config.path or "<string>"
        raise ConfigError(message, path=path, table="server", key="metrics") from None
    return Metrics()


def served(app: web.Application) -> tuple[tuple[str, str, Handler], ...]:
    """The routes `app` serves: `ROUTES`, and `GET /metrics` when its metrics are on."""
    return (*ROUTES, METRICS_ROUTE) if METRICS in app else ROUTES


async def _close(app: web.Application) -> None:
    """Shutting down closes the health store the gateway built and the upstream connections
    kept alive on this loop."""
    await app[TARGETS].aclose()
    await pool.close_all()


@web.middleware
async def _access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request: method, path, status, provider, duration (never headers/bodies).

    A client that went away before the answer was complete is logged as 499.
    """
    started = time.perf_counter()
    served = SERVED_BY.set("-")
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except BaseException as exc:
        if isinstance(exc, web.HTTPException):
            code = exc.status
        elif not isinstance(exc, Exception) or isinstance(exc, ConnectionResetError):
            code = 499
        raise
    finally:
        log.info(
            "%s %s %d provider=%s %.1fms",
            request.method,
            request.path,
            code,
            SERVED_BY.get(),
            (time.perf_counter() - started) * 1000,
        )
        SERVED_BY.reset(served)
        counts = request.app.get(METRICS)
        if counts is not None:
            resource = request.match_info.route.resource
            counts.request("unmatched" if resource is None else resource.canonical, code)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals and aiohttp's own errors (404 route, 405, 413) as OpenAI-shaped JSON."""
    try:
        return await handler(request)
    except wire.RequestError as exc:
        return _json_error(exc)
    except web.HTTPNotFound:
        routes = ", ".join(f"{method} {path}" for method, path, _ in served(request.app))
        message = f"unknown endpoint {request.method} {request.path}; this gateway serves {routes}"
        return _json_error(wire.RequestError(404, message, code="unknown_url"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        return _json_error(wire.RequestError(exc.status, exc.reason, type=kind))


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With a key configured, `/v1/` needs `Authorization: Bearer <key>` (compared in constant
    time); `/healthz` stays open for load balancers."""
    key = request.app.get(API_KEY)
    if key is not None and request.path.startswith("/v1/"):
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), key
        ):
            raise wire.RequestError(
                401,
                "missing or invalid API key: send Authorization: Bearer <key>",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return await handler(request)


@web.middleware
async def _admit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`/v1/` requests over `max_concurrent_requests` are a 429 before anything is read; a body
    is charged as it is read, through `HELD` (`limits.Admission`)."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    async with request.app[ADMISSION].admit() as held:
        request[HELD] = held
        return await handler(request)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions`: validate, resolve, then stream (SSE) or answer (JSON).

    The whole answer runs in the drain's scope: cut by a shutdown, a stream whose headers went
    out ends with an error event (code `server_shutdown`, no `[DONE]`), anything else is a 503.
    """
    try:
        async with request.app[DRAIN].scope():
            return await _chat(request)
    except ShutDown as exc:
        if SSE not in request:
            raise
        response = request[SSE]
        await response.write(exc.event())
        await response.write_eof()
        return response


async def _chat(request: web.Request) -> web.StreamResponse:
    try:
        body = await request[HELD].read(request.content.iter_any())
    except RequestPayloadError as exc:  # e.g. not in the Content-Encoding it claims
        request.content.feed_eof()  # aiohttp would read on, and fail again (a traceback)
        refused = _json_error(wire.RequestError(400, f"request body cannot be read: {exc}"))
        refused.force_close()  # what follows the body on this connection cannot be trusted
        return refused
    chat = wire.parse_chat(body)
    target = request.app[TARGETS].resolve(chat.model)
    try:
        stream = target.chain.stream(target.model, chat.messages, **chat.params)
    except UnsupportedCapabilityError as exc:
        raise _unsupported(target, chat, exc.capabilities) from None
    except InvalidRequestError as exc:
        raise wire.RequestError(400, str(exc)) from None
    counts = request.app.get(METRICS)
    if counts is not None:
        counts.streams += 1
    try:
        async with stream:
            if chat.stream:
                return await _stream(request, target, chat, stream)
            return await _complete(request, target, chat, stream)
    finally:
        if counts is not None:  # the trace is final once the stream is closed
            counts.streams -= 1
            counts.answered(stream.attempts)


async def _stream(
    request: web.Request, target: Target, chat: wire.ChatRequest, stream: ChatStream
) -> web.StreamResponse:
    """SSE; headers go out only with the first event, so earlier failures get a real status."""
    events = stream.events()
    first: Event
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = ""
    except AllProvidersFailedError as exc:
        raise status.all_failed(exc) from None
    except StreamInterruptedError as exc:
        raise status.interrupted(exc) from None
    response = _SSEResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            **_served(target, stream),
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    request[SSE] = response
    chunks = wire.Chunks(chat.model)
    with request.app[STALLS].watch(request.transport):
        try:
            await response.write(chunks.first(first))
            async for event in events:
                await response.write(chunks.event(event))
        except StreamInterruptedError as exc:
            await response.write_eof(wire.error_event(str(exc), "stream_interrupted"))
            return response
        usage = stream.usage if chat.include_usage else None
        await response.write_eof(chunks.end(_finish_reason(stream), usage))
    return response


class _SSEResponse(web.StreamResponse):
    """A stream whose headers go out with its first event, in one send: the handler writes
    that event right after `prepare`, so holding them back delays nothing (aiohttp's option,
    as its `web.Response` uses; the last event goes with the chunked terminator likewise)."""

    _send_headers_immediately = False


async def _complete(
    request: web.Request, target: Target, chat: wire.ChatRequest, stream: ChatStream
) -> web.StreamResponse:
    """One `chat.completion`; a failure at any point is an error status, never partial text."""
    try:
        message = await stream.message()
    except AllProvidersFailedError as exc:
        raise status.all_failed(exc) from None
    except StreamInterruptedError as exc:
        raise status.interrupted(exc) from None
    body = wire.completion(
        chat.model, message, _finish_reason(stream), stream.usage, stream.logprobs
    )
    return web.json_response(body, headers=_served(target, stream))


def _unsupported(
    target: Target, chat: wire.ChatRequest, capabilities: Sequence[str]
) -> wire.RequestError:
    """The 400 for a request needing capabilities no provider of the target has (nothing was
    sent): code "unsupported_capability", `param` the field that needs the first of them."""
    lacking = ", ".join(capabilities)
    name = target.chain.name
    if target.single:
        message = f"provider {name!r} does not support {lacking}, which the request uses"
    else:
        message = f"no provider of {name!r} supports {lacking}, which the request uses"
    param = capability.param_for(capabilities[0], chat.params) if capabilities else None
    return wire.RequestError(
        400, f"model {chat.model!r}: {message}", param=param, code="unsupported_capability"
    )


def _served(target: Target, stream: ChatStream) -> dict[str, str]:
    """The headers naming who served, noted on the request for the access log too."""
    provider = stream.provider or ""
    SERVED_BY.set(provider or "-")
    route = provider if target.single else stream.route or provider
    return {PROVIDER_HEADER: provider, ROUTE_HEADER: route}


def _finish_reason(stream: ChatStream) -> str:
    """The serving provider's finish_reason ("length", ...) when it reports one, else
    "tool_calls" when the answer made some, else "stop" (the answer completed)."""
    return stream.finish_reason or ("tool_calls" if stream.tool_calls else "stop")


async def models(request: web.Request) -> web.Response:
    """`GET /v1/models`: aliases, chains and providers as OpenAI model objects."""
    return web.json_response({"object": "list", "data": request.app[TARGETS].models()})


async def model(request: web.Request) -> web.Response:
    """`GET /v1/models/{id}` (the SDK's `models.retrieve`): the listed model object (any case);
    else, for a model a chat request would route (e.g. "NAME/MODEL", or any model through the
    default chain), an object naming the chain; else the 404 `model_not_found` a chat request
    would get."""
    wanted = request.match_info["id"]
    targets = request.app[TARGETS]
    found = next((m for m in targets.models() if m["id"].lower() == wanted.lower()), None)
    if found is None:
        target = targets.resolve(wanted)
        found = {"id": wanted, "object": "model", "created": 0, "owned_by": "providerhub"}
        found |= {"kind": "routed", "chain": target.chain.name, "model": target.model}
    return web.json_response(found)


async def providers(request: web.Request) -> web.Response:
    """`GET /v1/providers`: metadata, credentials state and health (`ProviderHealth.record`:
    circuit, cooldown left, last failure, latency estimate, requests in flight) of each
    provider, from the gateway's health store (the shared one with Redis)."""
    targets = request.app[TARGETS]
    entries = targets.registry.entries()
    data = []
    for entry, health in zip(entries, await _health(targets), strict=True):
        provider = entry.provider
        missing = provider.missing_credentials() if provider.needs_auth else None
        data.append(
            {
                "name": provider.name,
                "source": entry.plugin.source,
                "working": bool(provider.working),
                "supports_stream": bool(provider.supports_stream),
                "supports_gpt_35_turbo": bool(getattr(provider, "supports_gpt_35_turbo", False)),
                "supports_gpt_4": bool(getattr(provider, "supports_gpt_4", False)),
                "needs_auth": bool(provider.needs_auth),
                "credentials": "ok" if missing is None else f"missing: {missing}",
                **health.record(),
            }
        )
    return web.json_response({"object": "list", "data": data})


async def _health(targets: Targets) -> list[ProviderHealth]:
    """Each registered provider's health now, in the registry's order, from the gateway's
    store (with Redis one round trip each, sent together)."""
    store = targets.health
    names = [entry.provider.name for entry in targets.registry.entries()]
    return list(await asyncio.gather(*(store.snapshot(name) for name in names)))


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics` (with `[server] metrics = true`): the Prometheus text format, outside
    `/v1/` so without the gateway's key, like `/healthz` (`providerhub.server.metrics`)."""
    from .metrics import CONTENT_TYPE

    body = request.app[METRICS].render(await _health(request.app[TARGETS]))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: the process answers; counts of what it serves."""
    targets = request.app[TARGETS]
    entries = targets.registry.entries()
    config = targets.config
    return web.json_response(
        {
            "status": "ok",
            "providers": len(entries),
            "working": sum(1 for entry in entries if entry.provider.working),
            "chains": len(targets.chains),
            "aliases": len(config.models) if config is not None else 0,
            "default_chain": targets.default.name if targets.default is not None else None,
        }
    )


def _json_error(error: wire.RequestError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/v1/chat/completions", chat_completions),
    ("GET", "/v1/models", models),
    ("GET", "/v1/models/{id}", model),
    ("GET", "/v1/providers", providers),
    ("GET", "/healthz", healthz),
)
"""Every route the gateway serves; an unknown one is a 404 naming them."""
METRICS_ROUTE: tuple[str, str, Handler] = ("GET", "/metrics", metrics)
"""Served too with `[server] metrics = true`."""
