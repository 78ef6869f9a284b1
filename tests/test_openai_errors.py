"""OpenAICompatible's failures: HTTP error bodies, rate limits and the transport fault matrix."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from providerhub import (
    EmptyStreamError,
    MalformedStreamError,
    ServerSentEvent,
    Timeouts,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeoutError,
)
from providerhub.chat_completions import parse_events
from providerhub.testing import FakeUpstream, Reply
from providerhub_openai import Completion, OpenAICompatible

MESSAGES = [{"role": "user", "content": "hi"}]
FAST = Timeouts(connect=2, first_chunk=0.3, idle=0.3, total=5)


def endpoint(upstream: FakeUpstream) -> OpenAICompatible:
    return OpenAICompatible(name="local", base_url=upstream.url + "/v1", default_model="m")


async def collect(provider: OpenAICompatible, **kwargs: Any) -> list[str]:
    return [chunk async for chunk in provider.create_async_generator("m", MESSAGES, **kwargs)]


@pytest.mark.parametrize(
    ("status", "message", "retryable", "auth_failed"),
    [
        (400, "Invalid value for 'temperature'", False, False),
        (401, "Incorrect API key provided", False, True),
        (404, "The model 'nope' does not exist", False, False),
        (500, "The server had an error", True, False),
    ],
)
async def test_error_bodies_become_the_message(
    fake_upstream: Any, status: int, message: str, retryable: bool, auth_failed: bool
) -> None:
    upstream = await fake_upstream(Reply.error(status, message))

    with pytest.raises(UpstreamHTTPError) as caught:
        await collect(endpoint(upstream))

    error = caught.value
    assert error.status == status
    assert error.message == message
    assert error.provider == "local"
    assert error.retryable is retryable
    assert error.auth_failed is auth_failed
    assert str(error) == (f"local: HTTP {status}: {message}")


async def test_429_retry_after_seconds(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.error(429, "Rate limit reached", retry_after="12"))

    with pytest.raises(UpstreamHTTPError) as caught:
        await collect(endpoint(upstream))

    assert caught.value.status == 429
    assert caught.value.retry_after == 12.0
    assert caught.value.retryable
    assert caught.value.message == "Rate limit reached"


async def test_429_ratelimit_reset_headers(fake_upstream: Any) -> None:
    headers = {"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "250ms"}
    upstream = await fake_upstream(Reply.error(429, "Too many tokens", headers=headers))

    with pytest.raises(UpstreamHTTPError) as caught:
        await collect(endpoint(upstream))

    assert caught.value.retry_after == 90.0


async def test_non_json_error_body(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.error(502, body="<html>Bad gateway</html>"))

    with pytest.raises(UpstreamHTTPError, match=r"^local: HTTP 502: <html>Bad gateway</html>$"):
        await collect(endpoint(upstream))


def test_error_event_inside_the_stream() -> None:
    events = [
        ServerSentEvent('{"choices": [{"delta": {"content": "par"}}]}'),
        ServerSentEvent('{"error": {"message": "model overloaded", "code": 503}}'),
    ]

    with pytest.raises(UpstreamError, match="local: error in stream: model overloaded"):
        parse_events(events, Completion(), "local", [])


def test_chunk_of_the_wrong_shape() -> None:
    with pytest.raises(MalformedStreamError, match=r"not a chat\.completion\.chunk"):
        parse_events([ServerSentEvent('{"choices": [7]}')], Completion(), "local", [])


async def test_refused_port() -> None:
    upstream = await FakeUpstream().start()
    provider = endpoint(upstream)
    await upstream.close()

    with pytest.raises(UpstreamConnectionError, match="cannot connect"):
        await collect(provider, timeout=FAST)


async def test_hang_before_headers_times_out(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.hang())
    started = time.monotonic()

    with pytest.raises(UpstreamTimeoutError) as caught:
        await collect(endpoint(upstream), timeout=FAST)

    assert caught.value.phase == "first_chunk"
    assert time.monotonic() - started < 5


async def test_hang_after_chunks_times_out_idle(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("a", "b"))
    seen: list[str] = []

    with pytest.raises(UpstreamTimeoutError) as caught:
        async for chunk in endpoint(upstream).create_async_generator("m", MESSAGES, timeout=FAST):
            seen.append(chunk)

    assert "".join(seen) == "ab"
    assert caught.value.phase == "idle"


async def test_close_mid_stream(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.close_after_chunks("a", "b"))
    seen: list[str] = []

    with pytest.raises(UpstreamConnectionError, match="closed before the response was complete"):
        async for chunk in endpoint(upstream).create_async_generator("m", MESSAGES, timeout=FAST):
            seen.append(chunk)

    assert "".join(seen) == "ab"


async def test_close_before_any_chunk(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.close_after_chunks())

    with pytest.raises(UpstreamConnectionError):
        await collect(endpoint(upstream), timeout=FAST)


async def test_malformed_event(fake_upstream: Any) -> None:
    upstream = await fake_upstream(
        Reply.malformed_after_chunks("a"), Reply.malformed_after_chunks()
    )
    provider = endpoint(upstream)
    seen: list[str] = []

    with pytest.raises(MalformedStreamError, match="malformed event"):
        async for chunk in provider.create_async_generator("m", MESSAGES, timeout=FAST):
            seen.append(chunk)
    with pytest.raises(MalformedStreamError):
        await collect(provider, timeout=FAST)

    assert seen in ([], ["a"]), "text before the bad event may arrive in the same batch"


async def test_empty_stream(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.empty())

    with pytest.raises(EmptyStreamError):
        await collect(endpoint(upstream), timeout=FAST)


async def test_stream_cut_without_done_or_finish_reason(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("a", done=False, finish_reason=None))

    with pytest.raises(UpstreamConnectionError, match=r"stream ended before data: \[DONE\]"):
        await collect(endpoint(upstream), timeout=FAST)


async def test_slow_chunks_within_limits(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("a", "b", "c", delay=0.05))

    assert await collect(endpoint(upstream), timeout=FAST) == ["a", "b", "c"]


async def test_huge_line(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.huge_line(300_000))

    assert "".join(await collect(endpoint(upstream), timeout=FAST)) == "x" * 300_000


async def test_consumer_stopping_early_closes_the_connection(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("a"))
    chunks = endpoint(upstream).create_async_generator("m", MESSAGES, timeout=FAST)

    assert await anext(chunks) == "a"
    await chunks.aclose()  # type: ignore[attr-defined]

    for _ in range(100):
        if upstream.active == 0:
            break
        await asyncio.sleep(0.01)
    assert upstream.active == 0
    assert upstream.disconnects == 1
