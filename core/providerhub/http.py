"""aiohttp plumbing for plugins whose provider makes HTTP requests.

What a plugin author uses: `request` (one request on a kept-alive connection of the caller's
`providerhub.pool.Pool`, its failures raised classified), `read_data` (the data of the
response's server-sent events, batched per network read, for
`providerhub.chat_completions.parse_events`; `read_events` for whole events), `read_body` (a
non-streamed body, at most `MAX_BODY` bytes), `UpstreamHTTPError` (an error status, with the
upstream's message and `retry_after`), and for a request made some other way `encode_json`,
`http_error`, `classify`, `client_timeout` and `retry_after`. Error texts never carry the
upstream's URL or address (errors that know it keep it in `url`).

This module imports aiohttp, so import it inside the call, not at module level: listing
providers never does. Headers that carry secrets (by `providerhub.redaction`) are redacted
from everything an error keeps.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._retry_after import retry_after
from .chat_completions import EXCERPT_CHARS, error_message, excerpt
from .errors import (
    InvalidRequestError,
    MalformedStreamError,
    ProviderHubError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
    os_error_text,
)
from .pool import DEFAULT_POOL, Pool
from .redaction import redacted_items
from .sse import ServerSentEvent, SSEDecoder
from .timeouts import Timeouts

__all__ = [
    "MAX_BODY",
    "UpstreamHTTPError",
    "classify",
    "client_timeout",
    "encode_json",
    "http_error",
    "read_body",
    "read_data",
    "read_events",
    "request",
    "retry_after",
]

_Item = TypeVar("_Item")
_dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
MAX_BODY = 16 * 1024 * 1024
"""The most bytes `read_body` reads of a non-streamed answer (16 MiB, as the gateway's own
request bound and an event-stream line's, `SSEDecoder.max_line`)."""


class UpstreamHTTPError(UpstreamError, aiohttp.ClientResponseError):
    """The upstream answered with an HTTP error status.

    `message` is the upstream's own explanation when its body has one (OpenAI-style
    `{"error": {"message": ...}}`), `body` a short excerpt, `retry_after` the seconds it asked
    us to wait (from Retry-After or x-ratelimit-reset-*), or None. Its text is "NAME: HTTP
    STATUS: MESSAGE"; `url` (in the repr, not the text) says where the request went.
    """

    def __init__(
        self,
        provider: str,
        *,
        status: int,
        url: str,
        message: str,
        body: str = "",
        retry_after: float | None = None,
        request_info: aiohttp.RequestInfo | None = None,
        headers: CIMultiDictProxy[str] | None = None,
    ) -> None:
        info = request_info or aiohttp.RequestInfo(
            url=URL(url),
            method="POST",
            headers=CIMultiDictProxy(CIMultiDict()),
            real_url=URL(url),
        )
        aiohttp.ClientResponseError.__init__(
            self, _redacted_info(info), (), status=status, message=message, headers=headers
        )
        self.provider = provider
        self.url = url
        self.body = body
        self.retry_after = retry_after
        self.retryable = status >= 500 or status in (408, 409, 425, 429)

    @property
    def auth_failed(self) -> bool:
        """True for 401 and 403: the credentials were refused."""
        return self.status in (401, 403)

    def __str__(self) -> str:
        return f"{self.provider}: HTTP {self.status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"UpstreamHTTPError(provider={self.provider!r}, status={self.status}, "
            f"url={self.url!r}, message={self.message!r}, retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle what the error says, with both header sets redacted (again) and no history."""
        info = self.request_info
        fields = {
            "status": self.status,
            "url": self.url,
            "message": self.message,
            "body": self.body,
            "retry_after": self.retry_after,
            "method": info.method,
            "request_url": str(info.url),
            "real_url": str(info.real_url),
            "request_headers": redacted_items(info.headers),
            "headers": None if self.headers is None else redacted_items(self.headers),
        }
        return _rebuild_http_error, (self.provider, fields), {"retryable": self.retryable}


def _rebuild_http_error(provider: str, fields: dict[str, Any]) -> UpstreamHTTPError:
    """Unpickle an UpstreamHTTPError from what its `__reduce__` kept."""
    request_info = aiohttp.RequestInfo(
        url=URL(fields["request_url"]),
        method=fields["method"],
        headers=CIMultiDictProxy(CIMultiDict(fields["request_headers"])),
        real_url=URL(fields["real_url"]),
    )
    headers = fields["headers"]
    return UpstreamHTTPError(
        provider,
        status=fields["status"],
        url=fields["url"],
        message=fields["message"],
        body=fields["body"],
        retry_after=fields["retry_after"],
        request_info=request_info,
        headers=None if headers is None else CIMultiDictProxy(CIMultiDict(headers)),
    )


def _redacted(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    """`headers` as aiohttp keeps them (repeated names too), secrets redacted."""
    return CIMultiDictProxy(CIMultiDict(redacted_items(headers)))


def _redacted_info(info: aiohttp.RequestInfo) -> aiohttp.RequestInfo:
    return aiohttp.RequestInfo(
        url=info.url, method=info.method, headers=_redacted(info.headers), real_url=info.real_url
    )


def client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """Socket-level limits; first-chunk, idle and total are enforced on the text stream."""
    return aiohttp.ClientTimeout(total=None, connect=timeouts.connect, sock_read=None)


@asynccontextmanager
async def request(
    provider: str,
    url: str,
    *,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeouts: Timeouts | None = None,
    proxy: str | None = None,
    method: str = "POST",
    pool: Pool | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send one request and yield the response once its status is a success.

    The connection comes from `pool` (the caller's provider's; `DEFAULT_POOL` when None), kept
    alive for the next request: an answer read to its end (its last bytes after the block
    exits, up to `DRAIN_BYTES` within `DRAIN_SECONDS`) returns it to the pool; any other exit,
    also a cancellation, closes it at once. A reused connection the upstream had closed while
    idle is retried once on another, when not one byte of an answer had come; never after.
    Failures are raised classified: UpstreamHTTPError for an error status,
    UpstreamConnectionError, UpstreamTimeoutError. `json_body` is encoded first, so a value JSON
    cannot carry (NaN, an arbitrary object) is an InvalidRequestError before any network I/O.
    """
    limits = timeouts or Timeouts()
    body = None if json_body is None else encode_json(json_body)
    if body is not None:
        headers = CIMultiDict(headers or ())
        headers.setdefault("Content-Type", "application/json")
    pool = pool or DEFAULT_POOL
    session = cast("aiohttp.ClientSession | None", pool.get())
    if session is None:
        session = _session(pool.max_connections)
        await pool.put(session)
    pool.began()
    try:
        response = await _send(session, method, url, body, headers, proxy, provider, limits)
        async with response:
            try:
                if response.status >= 400:
                    raise await http_error(response, provider)
                yield response
                await _drain(response)
            except BaseException:
                response.close()
                raise
    finally:
        pool.ended()


DRAIN_BYTES = 65536
DRAIN_SECONDS = 0.5
"""What is left of an answer after its caller stopped reading (an SSE stream's chunked
terminator after `[DONE]`) is read, up to these bounds, so its connection can be reused."""

_connection: ContextVar[_Handler | None] = ContextVar("providerhub_connection", default=None)
"""The connection the current task's request went out on (set by `_Connector.connect`)."""


class _Handler(ResponseHandler):
    """aiohttp's connection protocol, noting whether the connection served a request before
    (`reused`) and whether any byte of the current request's answer came (`answered`)."""

    served = reused = answered = False

    def data_received(self, data: bytes) -> None:
        self.answered = True
        super().data_received(data)


class _Connector(aiohttp.TCPConnector):
    """A TCPConnector whose connections are `_Handler`s, each noted in `_connection` when a
    request takes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        handler = functools.partial(_Handler, loop=self._loop)
        self._factory = cast("functools.partial[ResponseHandler]", handler)

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        handler = connection.protocol
        if isinstance(handler, _Handler):
            handler.reused, handler.served, handler.answered = handler.served, True, False
            _connection.set(handler)
        return connection


def _session(max_connections: int) -> aiohttp.ClientSession:
    """A pool's session: at most `max_connections` connections per host, and no cookie jar, so
    one caller's cookies never reach another's request."""
    connector = _Connector(limit=0, limit_per_host=max_connections)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str] | None,
    proxy: str | None,
    provider: str,
    limits: Timeouts,
) -> aiohttp.ClientResponse:
    """Send the request, once more when a reused connection was found closed before it
    answered anything (the upstream closed it while idle; nothing of the answer is lost)."""
    timeout = client_timeout(limits)
    retried = False
    while True:
        mark = _connection.set(None)
        try:
            return await session.request(
                method, url, data=body, headers=headers, proxy=proxy, timeout=timeout
            )
        except _CLOSED as exc:
            handler = _connection.get()
            if retried or handler is None or not handler.reused or handler.answered:
                raise classify(exc, provider, url, limits) from exc
            retried = True
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, provider, url, limits) from exc
        finally:
            _connection.reset(mark)


_CLOSED = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
    aiohttp.ClientConnectionResetError,
)
"""How a connection the upstream closed fails a request sent on it."""


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read the rest of an answer whose caller is done, within the bounds; else close it."""
    content = response.content
    if content.at_eof():
        return
    left = DRAIN_BYTES
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while left > 0 and (piece := await content.readany()):
                left -= len(piece)
    except (aiohttp.ClientError, TimeoutError):
        pass
    if not content.at_eof():
        response.close()


def encode_json(body: Any) -> bytes:
    """`body` as compact, strict JSON (no NaN or infinity), or InvalidRequestError.

    The error names the top-level parameter at fault and the kind of problem, never the value
    (it could be a secret).
    """
    try:
        return _dumps(body).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        problem = exc
    culprit = "the request body"
    if isinstance(body, Mapping):
        for key, value in body.items():
            try:
                _dumps(value)
            except (TypeError, ValueError, RecursionError) as exc:
                culprit, problem = f"request parameter {str(key)!r}", exc
                break
    raise InvalidRequestError(f"{culprit} cannot be sent as JSON: {_json_problem(problem)}")


def _json_problem(exc: Exception) -> str:
    """The encoder's complaint: it names types ("Object of type set ..."), never values."""
    text = str(exc)
    if text.startswith("Out of range float"):
        return "NaN and infinity are not valid JSON"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return text


def read_data(response: aiohttp.ClientResponse, provider: str) -> AsyncGenerator[list[str], None]:
    """Yield the data of the server-sent events of `response`, batched by network read.

    What `providerhub.chat_completions.parse_events` reads: no object per event, the event
    names dropped (a JSON-over-SSE format whose documents say their own type needs no more).
    Batching keeps the per-event cost at the decoder's, which is what makes streaming cheap.
    A reader that stops early (at `[DONE]`) should close it, e.g. with `contextlib.aclosing`.
    """
    decoder = SSEDecoder()
    return _batches(response, provider, decoder.feed_data, decoder.flush_data)


def read_events(
    response: aiohttp.ClientResponse, provider: str
) -> AsyncGenerator[list[ServerSentEvent], None]:
    """Yield the server-sent events of `response` (with names, ids), batched like `read_data`."""
    decoder = SSEDecoder()
    return _batches(response, provider, decoder.feed, decoder.flush)


async def _batches(
    response: aiohttp.ClientResponse,
    provider: str,
    feed: Callable[[bytes], list[_Item]],
    flush: Callable[[], list[_Item]],
) -> AsyncGenerator[list[_Item], None]:
    """What `feed` makes of each network read of `response`, then what `flush` makes."""
    content = response.content
    try:
        while chunk := await content.readany():
            items = feed(chunk)
            if items:
                yield items
        items = flush()
        if items:
            yield items
    except ValueError as exc:
        raise MalformedStreamError(provider, str(exc)) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise classify(exc, provider, str(response.url)) from exc


async def read_body(
    response: aiohttp.ClientResponse, provider: str, limit: int | None = None
) -> bytes:
    """The whole body of `response`, or MalformedStreamError once it is over `limit` bytes
    (default MAX_BODY): refused by its Content-Length before reading anything, else as soon as
    what arrived passes the limit, so an oversize answer never sits whole in memory."""
    limit = MAX_BODY if limit is None else limit
    parts: list[bytes] = []
    size = response.content_length or 0
    if size <= limit:
        size = 0
        try:
            while chunk := await response.content.read(min(limit + 1 - size, 2**20)):
                size += len(chunk)
                if size > limit:
                    break
                parts.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, provider, str(response.url)) from exc
    if size > limit:
        raise MalformedStreamError(provider, f"response body larger than {limit} bytes")
    return b"".join(parts)


async def http_error(response: aiohttp.ClientResponse, provider: str) -> UpstreamHTTPError:
    """Build the UpstreamHTTPError for an error response, reading a bounded excerpt of its body."""
    try:
        raw = await asyncio.wait_for(response.content.read(EXCERPT_CHARS * 8), timeout=5)
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    body = raw.decode("utf-8", "replace")
    return UpstreamHTTPError(
        provider,
        status=response.status,
        url=str(response.url),
        message=error_message(body) or response.reason or "error",
        body=excerpt(body),
        retry_after=retry_after(response.headers),
        request_info=response.request_info,
        headers=_redacted(response.headers),
    )


def classify(
    exc: BaseException, provider: str, url: str | None = None, timeouts: Timeouts | None = None
) -> ProviderHubError:
    """Map an aiohttp or socket error onto the taxonomy (refused, DNS, TLS, cut, timeout).

    The text names what failed without the host, address or URL (`url` keeps it); the
    original error stays the cause, for logs.
    """
    if isinstance(exc, ProviderHubError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeoutError(provider, "connect", (timeouts or Timeouts()).connect)
    if isinstance(exc, TimeoutError):
        return UpstreamTimeoutError(provider, "idle", (timeouts or Timeouts()).idle)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = "DNS lookup failed"
    elif isinstance(exc, aiohttp.ClientSSLError):
        reason = "TLS handshake failed"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        reason = f"cannot connect: {os_error_text(exc.os_error)}"
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        reason = "connection closed before the response was complete"
    elif isinstance(exc, aiohttp.ClientOSError):
        reason = f"connection error: {os_error_text(exc)}"
    else:
        reason = type(exc).__name__  # aiohttp's own text may name the host or the URL
    return UpstreamConnectionError(provider, reason, url=url)
