"""aiohttp plumbing shared by HTTP providers: one request, event reading, error mapping.

This module imports aiohttp, so import it only where a request is made: listing providers
never does. Headers that carry secrets are redacted from everything an error keeps.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .errors import (
    MalformedStreamError,
    ProviderHubError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .sse import ServerSentEvent, SSEDecoder
from .timeouts import Timeouts

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "set-cookie"}
)
EXCERPT_CHARS = 300
READ_SIZE = 2**16


class UpstreamHTTPError(UpstreamError, aiohttp.ClientResponseError):
    """The upstream answered with an HTTP error status.

    `message` is the upstream's own explanation when its body has one (OpenAI-style
    `{"error": {"message": ...}}`), `body` a short excerpt, `retry_after` the seconds it asked
    us to wait (from Retry-After or x-ratelimit-reset-*), or None.
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
            url=_yarl(url),
            method="POST",
            headers=CIMultiDictProxy(CIMultiDict()),
            real_url=_yarl(url),
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
        return f"{self.provider}: HTTP {self.status} from {self.url}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"UpstreamHTTPError(provider={self.provider!r}, status={self.status}, "
            f"url={self.url!r}, message={self.message!r}, retry_after={self.retry_after!r})"
        )


def _yarl(url: str) -> Any:
    from yarl import URL

    return URL(url)


def redact_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """A copy of `headers` with secret-bearing values replaced."""
    return CIMultiDict(
        (key, "<redacted>" if key.lower() in SECRET_HEADERS else value)
        for key, value in headers.items()
    )


def _redacted_info(info: aiohttp.RequestInfo) -> aiohttp.RequestInfo:
    return aiohttp.RequestInfo(
        url=info.url,
        method=info.method,
        headers=CIMultiDictProxy(redact_headers(info.headers)),
        real_url=info.real_url,
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
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send one request and yield the response once its status is a success.

    The session, its connector and the connection are closed when the block exits, also on
    cancellation. Failures are raised classified: UpstreamHTTPError for an error status,
    UpstreamConnectionError, UpstreamTimeoutError.
    """
    limits = timeouts or Timeouts()
    async with aiohttp.ClientSession(timeout=client_timeout(limits)) as session:
        try:
            response = await session.request(
                method, url, json=json_body, headers=headers, proxy=proxy
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, provider, url, limits) from exc
        async with response:
            if response.status >= 400:
                raise await http_error(response, provider)
            yield response


async def read_events(
    response: aiohttp.ClientResponse, provider: str
) -> AsyncGenerator[list[ServerSentEvent], None]:
    """Yield the server-sent events of `response`, batched by what each network read completed.

    Batching keeps the per-event cost at the decoder's, which is what makes streaming cheap.
    A reader that stops early (at `[DONE]`) should close it, e.g. with `contextlib.aclosing`.
    """
    decoder = SSEDecoder()
    content = response.content
    try:
        while chunk := await content.readany():
            events = decoder.feed(chunk)
            if events:
                yield events
        events = decoder.flush()
        if events:
            yield events
    except ValueError as exc:
        raise MalformedStreamError(provider, str(exc)) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise classify(exc, provider, str(response.url)) from exc


def loads_event(event: ServerSentEvent, provider: str) -> Any:
    """Parse an event's JSON data, or raise MalformedStreamError naming the provider."""
    try:
        return json.loads(event.data)
    except ValueError:
        raise MalformedStreamError(
            provider, "malformed event", excerpt=event.data[:EXCERPT_CHARS]
        ) from None


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
        message=_error_message(body) or response.reason or "error",
        body=body[:EXCERPT_CHARS],
        retry_after=retry_after(response.headers),
        request_info=response.request_info,
        headers=CIMultiDictProxy(redact_headers(response.headers)),
    )


def _error_message(body: str) -> str:
    """The upstream's own explanation from an OpenAI-style error body, else a body excerpt."""
    try:
        document = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:EXCERPT_CHARS]
    if isinstance(document, dict):
        error = document.get("error", document)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:EXCERPT_CHARS]
        if isinstance(error, str):
            return error[:EXCERPT_CHARS]
    return " ".join(body.split())[:EXCERPT_CHARS]


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or x-ratelimit-reset-* headers."""
    value = headers.get("Retry-After")
    if value is not None:
        value = value.strip()
        if value.replace(".", "", 1).isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    resets = [
        seconds
        for key in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if (seconds := _duration(headers.get(key))) is not None
    ]
    return max(resets) if resets else None


def _duration(value: str | None) -> float | None:
    """Parse OpenAI's reset durations: "20ms", "1.5s", "6m0s", "1h2m3s", or plain seconds."""
    if not value:
        return None
    total, number = 0.0, ""
    text = value.strip()
    index = 0
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
        else:
            unit = "ms" if text.startswith("ms", index) else char
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}.get(unit)
            if scale is None or not number:
                return None
            total += float(number) * scale
            number = ""
            index += len(unit) - 1
        index += 1
    if number:
        total += float(number)
    return total


def classify(
    exc: BaseException, provider: str, url: str | None = None, timeouts: Timeouts | None = None
) -> ProviderHubError:
    """Map an aiohttp or socket error onto the taxonomy (refused, DNS, TLS, cut, timeout)."""
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
        reason = f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        reason = "connection closed before the response was complete"
    elif isinstance(exc, aiohttp.ClientOSError):
        reason = f"connection error: {exc.strerror or exc}"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return UpstreamConnectionError(provider, reason, url=url)
