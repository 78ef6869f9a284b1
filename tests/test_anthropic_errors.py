"""AnthropicProvider's failures and secrets over real sockets: HTTP statuses and error bodies,
in-stream error events, what chains do with them, and keys never shown."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from anthropic_helpers import error_event, stream, text
from anthropic_upstream import MessagesUpstream, Scripted
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    MemoryHealthStore,
    MissingCredentialsError,
    StreamInterruptedError,
    UpstreamError,
    UpstreamHTTPError,
)
from providerhub_anthropic import AnthropicProvider

HELLO = [{"role": "user", "content": "Hello"}]
KEY = "sk-ant-secret-0123456789"
VAR = "PROVIDERHUB_TEST_ANTHROPIC_KEY"


def claude(upstream: MessagesUpstream, name: str = "claude", **options: Any) -> AnthropicProvider:
    options.setdefault("api_key", KEY)
    return AnthropicProvider(
        name=name, base_url=upstream.url, default_model="claude-test", **options
    )


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
    status: int, kind: str, message: str, retryable: bool, auth_failed: bool
) -> None:
    async with MessagesUpstream(Scripted.error(status, kind, message)) as up:
        with pytest.raises(UpstreamHTTPError) as caught:
            await claude(up).create_async("", HELLO)

    error = caught.value
    assert (error.status, error.message) == (status, message)
    assert (error.retryable, error.auth_failed) == (retryable, auth_failed)
    assert str(error) == f"claude: HTTP {status} from {up.url}/v1/messages: {message}"


async def test_429_carries_retry_after_and_cools_the_provider_in_a_chain() -> None:
    limited = Scripted.error(
        429, "rate_limit_error", "Number of requests exceeded", retry_after="7"
    )
    async with (
        MessagesUpstream(limited) as a,
        MessagesUpstream(
            Scripted.streamed(stream(text("from b"))), Scripted.streamed(stream(text("b again")))
        ) as b,
    ):
        health = MemoryHealthStore()
        chain = FallbackChain([claude(a, "a"), claude(b, "b")], health=health)
        first = chain.stream("", HELLO)
        assert await first.text() == "from b"
        second = chain.stream("", HELLO)
        assert await second.text() == "b again"

    error = first.attempts[0].error
    assert isinstance(error, UpstreamHTTPError)
    assert (error.status, error.retry_after, error.retryable) == (429, 7.0, True)
    assert [attempt.outcome for attempt in second.attempts] == ["skipped", "served"]
    assert "rate limited" in str(second.attempts[0])
    assert len(a.requests) == 1


async def test_overloaded_529_fails_over() -> None:
    async with (
        MessagesUpstream(Scripted.error(529, "overloaded_error", "Overloaded")) as a,
        MessagesUpstream(Scripted.streamed(stream(text("served")))) as b,
    ):
        chain = FallbackChain([claude(a, "a"), claude(b, "b")], health=MemoryHealthStore())
        answer = chain.stream("", HELLO)
        assert await answer.text() == "served"
    assert [str(attempt).split(" [")[0] for attempt in answer.attempts] == [
        f"a: failed (HTTP 529 from {a.url}/v1/messages: Overloaded)",
        "b: served",
    ]


async def test_error_event_before_any_output_fails_over() -> None:
    overloaded = [*stream(text("x"))[:2], error_event("overloaded_error", "Overloaded")]
    async with (
        MessagesUpstream(Scripted.streamed(overloaded)) as a,
        MessagesUpstream(Scripted.streamed(stream(text("served")))) as b,
    ):
        chain = FallbackChain([claude(a, "a"), claude(b, "b")], health=MemoryHealthStore())
        answer = chain.stream("", HELLO)
        assert await answer.text() == "served"
    error = answer.attempts[0].error
    assert isinstance(error, UpstreamError) and error.retryable
    assert str(error) == "a: error in stream: overloaded_error: Overloaded"


async def test_error_event_after_output_interrupts() -> None:
    cut = [*stream(text("par", "tial"))[:5], error_event("api_error", "Internal error")]
    async with (
        MessagesUpstream(Scripted.streamed(cut)) as a,
        MessagesUpstream(Scripted.streamed(stream(text("never")))) as b,
    ):
        chain = FallbackChain([claude(a, "a"), claude(b, "b")], health=MemoryHealthStore())
        answer = chain.stream("", HELLO)
        with pytest.raises(StreamInterruptedError) as caught:
            await answer.text()
    assert caught.value.text == "partial"
    assert b.requests == []


async def test_missing_key_is_skipped_by_chains_and_named_on_a_direct_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(VAR, raising=False)
    async with (
        MessagesUpstream() as a,
        MessagesUpstream(Scripted.streamed(stream(text("backup")))) as b,
    ):
        keyless = AnthropicProvider(name="a", base_url=a.url, api_key_env=VAR, default_model="m")
        with pytest.raises(MissingCredentialsError) as caught:
            keyless.stream("", HELLO)
        chain = FallbackChain([keyless, claude(b, "b")], health=MemoryHealthStore())
        answer = chain.stream("", HELLO)
        assert await answer.text() == "backup"
    assert caught.value.env_var == VAR
    assert (
        str(caught.value)
        == f"provider 'a' needs credentials: environment variable {VAR} is not set"
    )
    assert keyless.needs_auth
    assert str(answer.attempts[0]) == (
        f"a: skipped (missing credentials: environment variable {VAR} is not set)"
    )
    assert a.requests == []


async def test_key_from_the_environment_is_sent_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, KEY)
    echoed = Scripted.error(401, "authentication_error", f"invalid x-api-key {KEY}")
    async with MessagesUpstream(echoed) as up:
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


async def test_headers_env_values_are_sent_and_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "tenant-5ecret-42")
    echoed = Scripted.error(403, "permission_error", "tenant tenant-5ecret-42 unknown")
    async with MessagesUpstream(echoed) as up:
        provider = claude(up, headers_env={"X-Tenant": VAR})
        with pytest.raises(UpstreamHTTPError) as caught:
            await provider.create_async("", HELLO)
    assert up.requests[0].headers["X-Tenant"] == "tenant-5ecret-42"
    assert caught.value.message == "tenant <redacted> unknown"
    assert caught.value.request_info.headers["X-Tenant"] == "<redacted>"
    assert "5ecret" not in repr(provider)


async def test_every_provider_failing_names_each() -> None:
    async with (
        MessagesUpstream(Scripted.error(400, "invalid_request_error", "bad image")) as a,
        MessagesUpstream(Scripted.error(529, "overloaded_error", "Overloaded")) as b,
    ):
        chain = FallbackChain([claude(a, "a"), claude(b, "b")], health=MemoryHealthStore())
        with pytest.raises(AllProvidersFailedError) as caught:
            await chain.create_async("", HELLO)
    assert "bad image" in str(caught.value) and "Overloaded" in str(caught.value)
    assert KEY not in str(caught.value)
