"""AnthropicProvider's failures and secrets over real sockets: HTTP statuses and error bodies,
in-stream error events and faults, what chains do with them, and keys never shown."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from helpers import MakeUpstream
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    MalformedStreamError,
    MemoryHealthStore,
    MissingCredentialsError,
    StreamInterruptedError,
    Timeouts,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeoutError,
)
from providerhub.testing import FakeUpstream, Reply
from providerhub_anthropic import AnthropicProvider

HELLO = [{"role": "user", "content": "Hello"}]
KEY = "sk-ant-secret-0123456789"
VAR = "PROVIDERHUB_TEST_ANTHROPIC_KEY"
FAST = Timeouts(connect=2, first_chunk=0.3, idle=0.3, total=5)


def claude(upstream: FakeUpstream, name: str = "claude", **options: Any) -> AnthropicProvider:
    options.setdefault("api_key", KEY)
    return AnthropicProvider(
        name=name, base_url=upstream.url, default_model="claude-test", **options
    )


async def two(fake_upstream: MakeUpstream, a: Reply, b: Reply) -> FallbackChain:
    """A chain of two Anthropic providers, "a" and "b", answering `a` and `b`."""
    first = await fake_upstream(a, wire="anthropic")
    second = await fake_upstream(b, wire="anthropic")
    return FallbackChain([claude(first, "a"), claude(second, "b")], health=MemoryHealthStore())


@pytest.mark.parametrize(
    ("status", "kind", "message", "retryable", "auth_failed"),
    [
        (400, "invalid_request_error", "max_tokens: Field required", False, False),
        (401, "authentication_error", "invalid x-api-key", False, True),
        (403, "permission_error", "Your API key does not have permission", False, True),
        (404, "not_found_error", "model: claude-nope", False, False),
        (500, "api_error", "Internal server error", True, False),
        (529, "overloaded_error", "Overloaded", True, False),
    ],
)
async def test_error_statuses(
    fake_upstream: MakeUpstream,
    status: int,
    kind: str,
    message: str,
    retryable: bool,
    auth_failed: bool,
) -> None:
    up = await fake_upstream(Reply.error(status, message, error_type=kind), wire="anthropic")

    with pytest.raises(UpstreamHTTPError) as caught:
        await claude(up).create_async("", HELLO)

    error = caught.value
    assert (error.status, error.message) == (status, message)
    assert (error.retryable, error.auth_failed) == (retryable, auth_failed)
    assert str(error) == f"claude: HTTP {status}: {message}"


async def test_429_carries_retry_after_and_cools_the_provider_in_a_chain(
    fake_upstream: MakeUpstream,
) -> None:
    limited = Reply.error(429, "Number of requests exceeded", retry_after="7")
    a = await fake_upstream(limited, wire="anthropic")
    b = await fake_upstream(Reply.text("from b"), Reply.text("b again"), wire="anthropic")
    chain = FallbackChain([claude(a, "a"), claude(b, "b")], health=MemoryHealthStore())

    first = chain.stream("", HELLO)
    assert await first.text() == "from b"
    second = chain.stream("", HELLO)
    assert await second.text() == "b again"

    error = first.attempts[0].error
    assert isinstance(error, UpstreamHTTPError)
    assert (error.status, error.retry_after, error.retryable) == (429, 7.0, True)
    assert error.message == "Number of requests exceeded"
    assert [attempt.outcome for attempt in second.attempts] == ["skipped", "served"]
    assert "rate limited" in str(second.attempts[0])
    assert len(a.requests) == 1


async def test_overloaded_529_fails_over(fake_upstream: MakeUpstream) -> None:
    chain = await two(fake_upstream, Reply.error(529, "Overloaded"), Reply.text("served"))

    answer = chain.stream("", HELLO)
    assert await answer.text() == "served"

    error = answer.attempts[0].error
    assert isinstance(error, UpstreamHTTPError) and error.retryable
    assert [attempt.outcome for attempt in answer.attempts] == ["failed", "served"]
    assert "HTTP 529" in str(answer.attempts[0]) and "Overloaded" in str(answer.attempts[0])


async def test_error_event_before_any_output_fails_over(fake_upstream: MakeUpstream) -> None:
    chain = await two(fake_upstream, Reply.error_after_chunks(), Reply.text("served"))

    answer = chain.stream("", HELLO)
    assert await answer.text() == "served"

    error = answer.attempts[0].error
    assert isinstance(error, UpstreamError) and error.retryable
    assert str(error) == "a: error in stream: overloaded_error: Overloaded"


async def test_error_event_after_output_interrupts(fake_upstream: MakeUpstream) -> None:
    cut = Reply.error_after_chunks("par", "tial", error_type="api_error", message="Internal")
    chain = await two(fake_upstream, cut, Reply.text("never"))

    answer = chain.stream("", HELLO)
    with pytest.raises(StreamInterruptedError) as caught:
        await answer.text()

    assert caught.value.text == "partial"
    assert "error in stream: api_error: Internal" in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (Reply.hang(), UpstreamTimeoutError, "first chunk timeout"),
        (Reply.keepalive_trickle(0.02), UpstreamTimeoutError, "first chunk timeout"),
        (Reply.hang_after_chunks("one"), UpstreamTimeoutError, "idle timeout"),
        (Reply.close_after_chunks("one"), UpstreamConnectionError, "connection closed"),
        (Reply.malformed_after_chunks("one"), MalformedStreamError, "malformed event"),
    ],
)
async def test_transport_faults(
    fake_upstream: MakeUpstream, reply: Reply, error: type[Exception], match: str
) -> None:
    up = await fake_upstream(reply, wire="anthropic")

    with pytest.raises(error, match=match):
        await claude(up).create_async("", HELLO, timeout=FAST)


async def test_missing_key_is_skipped_by_chains_and_named_on_a_direct_call(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VAR, raising=False)
    a = await fake_upstream(wire="anthropic")
    b = await fake_upstream(Reply.text("backup"), wire="anthropic")
    keyless = AnthropicProvider(name="a", base_url=a.url, api_key_env=VAR, default_model="m")

    with pytest.raises(MissingCredentialsError) as caught:
        keyless.stream("", HELLO)
    chain = FallbackChain([keyless, claude(b, "b")], health=MemoryHealthStore())
    answer = chain.stream("", HELLO)
    assert await answer.text() == "backup"

    assert caught.value.env_var == VAR
    assert str(caught.value) == (
        f"provider 'a' needs credentials: environment variable {VAR} is not set"
    )
    assert keyless.needs_auth
    assert str(answer.attempts[0]) == (
        f"a: skipped (missing credentials: environment variable {VAR} is not set)"
    )
    assert a.requests == []


async def test_key_from_the_environment_is_sent_and_never_shown(
    fake_upstream: MakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, KEY)
    up = await fake_upstream(Reply.error(401, f"invalid x-api-key {KEY}"), wire="anthropic")
    provider = AnthropicProvider(name="c", base_url=up.url, api_key_env=VAR, default_model="m")

    with pytest.raises(UpstreamHTTPError) as caught:
        await provider.create_async("", HELLO)

    assert up.requests[0].headers["x-api-key"] == KEY
    error = caught.value
    assert error.message == "invalid x-api-key <redacted>"
    assert error.request_info.headers["x-api-key"] == "<redacted>"
    assert caplog.records
    for shown in (
        str(error),
        repr(error),
        error.body,
        repr(pickle.loads(pickle.dumps(error))),
        repr(provider),
        str(provider.__dict__),
        caplog.text,
    ):
        assert KEY not in shown


async def test_headers_env_values_are_sent_and_scrubbed(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VAR, "tenant-5ecret-42")
    up = await fake_upstream(Reply.error(403, "tenant tenant-5ecret-42 unknown"), wire="anthropic")
    provider = claude(up, headers_env={"X-Tenant": VAR})

    with pytest.raises(UpstreamHTTPError) as caught:
        await provider.create_async("", HELLO)

    assert up.requests[0].headers["X-Tenant"] == "tenant-5ecret-42"
    assert caught.value.message == "tenant <redacted> unknown"
    assert caught.value.request_info.headers["X-Tenant"] == "<redacted>"
    assert "5ecret" not in repr(provider)


async def test_key_echoed_in_a_stream_error_event_is_scrubbed(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VAR, KEY)
    reply = Reply.error_after_chunks("Hel", message=f"bad key {KEY}", error_type="api_error")
    up = await fake_upstream(reply, wire="anthropic")
    provider = AnthropicProvider(name="c", base_url=up.url, api_key_env=VAR, default_model="m")
    seen: list[str] = []

    with pytest.raises(UpstreamError) as caught:
        async for chunk in provider.create_async_generator("", HELLO):
            seen.append(chunk)

    assert seen == ["Hel"]
    assert up.requests[0].headers["x-api-key"] == KEY
    assert str(caught.value) == "c: error in stream: api_error: bad key <redacted>"
    assert (
        repr(caught.value) == "UpstreamError('c: error in stream: api_error: bad key <redacted>')"
    )


async def test_every_provider_failing_names_each(fake_upstream: MakeUpstream) -> None:
    chain = await two(fake_upstream, Reply.error(400, "bad image"), Reply.error(529, "Overloaded"))

    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.create_async("", HELLO)

    assert "bad image" in str(caught.value) and "Overloaded" in str(caught.value)
    assert KEY not in str(caught.value)
