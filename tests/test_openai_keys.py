"""Keys an HTTP header cannot carry are refused by name before any request, never echoed;
parse errors share providerhub.http's excerpt length without importing aiohttp up front."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from typing import Any

import pytest
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    InvalidRequestError,
    MalformedStreamError,
    MemoryHealthStore,
    MissingCredentialsError,
    ServerSentEvent,
    UpstreamError,
    UpstreamHTTPError,
)
from providerhub.chat_completions import parse_completion, parse_events
from providerhub.testing import Reply
from providerhub_openai import Completion, OpenAICompatible

MESSAGES = [{"role": "user", "content": "hi"}]
VAR = "PROVIDERHUB_TEST_BAD_KEY"
UNUSABLE = (
    f"environment variable {VAR} holds a key with a control character (a stray newline?), "
    "which an HTTP header cannot carry; the value is not shown"
)


@pytest.mark.parametrize("key", ["sk-live-abc123\n", "sk-live-abc123\r\n", "sk-live\x01abc123"])
async def test_key_with_a_control_character_is_refused_by_name(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv(VAR, key)
    upstream = await fake_upstream(Reply.text("never"))
    provider = OpenAICompatible(
        name="local", base_url=upstream.url + "/v1", api_key_env=VAR, default_model="m"
    )

    with pytest.raises(InvalidRequestError) as caught:
        await provider.create_async("m", MESSAGES)

    assert str(caught.value) == f"local: {UNUSABLE}"
    assert provider.missing_credentials() == UNUSABLE
    assert upstream.requests == []
    for text in (str(caught.value), repr(caught.value), repr(provider)):
        assert "abc123" not in text


async def test_chain_skips_a_provider_whose_key_is_unusable(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VAR, "sk-live-abc123\n")
    upstream = await fake_upstream(Reply.text("never"))
    provider = OpenAICompatible(
        name="local", base_url=upstream.url + "/v1", api_key_env=VAR, default_model="m"
    )
    chain = FallbackChain([provider], health=MemoryHealthStore())

    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.create_async("", MESSAGES)

    assert [(a.provider, a.outcome) for a in caught.value.attempts] == [("local", "skipped")]
    assert UNUSABLE in str(caught.value) and "abc123" not in str(caught.value)
    assert upstream.requests == []


@pytest.mark.parametrize(
    "header", ["x-goog-api-key", "Cookie", "X-Auth-Token", "Ocp-Apim-Subscription-Key"]
)
async def test_each_secret_header_is_sent_but_hidden(fake_upstream: Any, header: str) -> None:
    upstream = await fake_upstream(Reply.error(401, "bad credential sec-123456"))
    provider = OpenAICompatible(
        name="local", base_url=upstream.url + "/v1", headers={header: "sec-123456"}
    )

    with pytest.raises(UpstreamHTTPError) as caught:
        await provider.create_async("m", MESSAGES)

    assert upstream.requests[0].headers[header] == "sec-123456"
    assert provider.headers == {header: "<redacted>"}
    assert repr(provider) == (
        f"OpenAICompatible(name='local', base_url='{upstream.url}/v1', "
        f"headers={{'{header}': '<redacted>'}})"
    )
    assert caught.value.message == "bad credential <redacted>"


def test_literal_key_with_a_control_character_is_refused_without_echo() -> None:
    with pytest.raises(ValueError) as caught:
        OpenAICompatible(name="x", base_url="http://127.0.0.1:1/v1", api_key="sk-live-abc123\n")

    assert str(caught.value) == (
        "option 'api_key' holds a key with a control character (a stray newline?), which an "
        "HTTP header cannot carry; the value is not shown"
    )
    assert "abc123" not in repr(caught.value)


def test_secret_header_value_with_a_control_character_is_refused_without_echo() -> None:
    with pytest.raises(ValueError) as caught:
        OpenAICompatible(
            name="x", base_url="http://127.0.0.1:1/v1", headers={"x-goog-api-key": "AIza123\n"}
        )

    assert str(caught.value) == (
        "option 'headers': the value of 'x-goog-api-key' has a control character (a stray "
        "newline?), which an HTTP header cannot carry"
    )


def test_excerpts_use_the_shared_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("providerhub.chat_completions.EXCERPT_CHARS", 8)

    with pytest.raises(MalformedStreamError) as event:
        parse_events([ServerSentEvent(data="not json at all")], Completion(), "local", [])
    with pytest.raises(MalformedStreamError) as body:
        parse_completion(b"<html>gateway</html>", Completion(), "local")
    with pytest.raises(UpstreamError, match=r"^local: error in stream: overload$"):
        parse_events(
            [ServerSentEvent(data='{"error": {"message": "overloaded"}}')],
            Completion(),
            "local",
            [],
        )

    assert (event.value.excerpt, body.value.excerpt) == ("not json", "<html>ga")


def test_importing_the_plugin_does_not_import_aiohttp() -> None:
    script = "import sys, providerhub_openai; print('aiohttp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )

    assert done.stdout == "False\n"


AZURE_VAR = "PROVIDERHUB_TEST_AZURE_KEY"
AZURE_KEY = "az-5ecret-0123456789abcdef"


def azure(url: str, **options: Any) -> OpenAICompatible:
    return OpenAICompatible(
        name="azure",
        base_url=url + "/v1",
        headers_env={"api-key": AZURE_VAR},
        default_model="m",
        **options,
    )


async def test_headers_env_sends_the_variable_and_shows_only_its_name(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(AZURE_VAR, AZURE_KEY)
    upstream = await fake_upstream(Reply.text("fine"))
    provider = azure(upstream.url, headers={"X-Title": "demo"})

    assert await provider.create_async("", MESSAGES) == "fine"

    sent = upstream.requests[0].headers
    assert (sent["api-key"], sent["X-Title"]) == (AZURE_KEY, "demo")
    assert "Authorization" not in sent
    assert (provider.needs_auth, provider.missing_credentials()) == (True, None)
    assert provider.headers_env == {"api-key": AZURE_VAR}
    assert repr(provider) == (
        f"OpenAICompatible(name='azure', base_url='{upstream.url}/v1', default_model='m', "
        f"headers={{'X-Title': 'demo'}}, headers_env={{'api-key': '{AZURE_VAR}'}})"
    )
    assert caplog.records
    for text in (repr(provider), str(provider.__dict__), caplog.text):
        assert AZURE_KEY not in text


async def test_headers_env_value_is_read_at_call_time(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AZURE_VAR, raising=False)
    upstream = await fake_upstream(Reply.text("a"), Reply.text("b"))
    provider = azure(upstream.url)
    monkeypatch.setenv(AZURE_VAR, "first")
    await provider.create_async("", MESSAGES)
    monkeypatch.setenv(AZURE_VAR, "second")
    await provider.create_async("", MESSAGES)

    assert [r.headers["api-key"] for r in upstream.requests] == ["first", "second"]


async def test_unset_headers_env_variable_is_missing_credentials(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VAR, "sk-set")
    monkeypatch.delenv(AZURE_VAR, raising=False)
    upstream = await fake_upstream(Reply.text("from backup"))
    provider = azure(upstream.url, api_key_env=VAR)
    backup = OpenAICompatible(name="backup", base_url=upstream.url + "/v1", default_model="m")
    chain = FallbackChain([provider, backup], health=MemoryHealthStore())

    assert provider.missing_credentials() == f"environment variable {AZURE_VAR} is not set"
    with pytest.raises(MissingCredentialsError) as caught:
        await provider.create_async("m", MESSAGES)
    assert caught.value.env_var == AZURE_VAR
    assert str(caught.value) == (
        f"provider 'azure' needs credentials: environment variable {AZURE_VAR} is not set"
    )
    stream = chain.stream("", MESSAGES)
    assert "".join([chunk async for chunk in stream]) == "from backup"
    assert [str(a) for a in stream.attempts] == [
        f"azure: skipped (missing credentials: environment variable {AZURE_VAR} is not set)",
        "backup: served",
    ]
    assert len(upstream.requests) == 1 and "api-key" not in upstream.requests[0].headers


async def test_headers_env_value_with_a_control_character_is_refused_by_name(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AZURE_VAR, "az-abc123\n")
    upstream = await fake_upstream(Reply.text("never"))
    provider = azure(upstream.url)
    unusable = UNUSABLE.replace(VAR, AZURE_VAR)

    with pytest.raises(InvalidRequestError) as caught:
        await provider.create_async("m", MESSAGES)

    assert str(caught.value) == f"azure: {unusable}"
    assert provider.missing_credentials() == unusable
    assert upstream.requests == []


async def test_echoed_headers_env_value_is_scrubbed_from_the_error(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AZURE_VAR, AZURE_KEY)
    upstream = await fake_upstream(Reply.error(401, f"tenant {AZURE_KEY} unknown"))
    provider = OpenAICompatible(
        name="t", base_url=upstream.url + "/v1", headers_env={"X-Tenant": AZURE_VAR}
    )

    with pytest.raises(UpstreamHTTPError) as caught:
        await provider.create_async("m", MESSAGES)

    error = caught.value
    assert upstream.requests[0].headers["X-Tenant"] == AZURE_KEY
    assert error.message == "tenant <redacted> unknown"
    assert error.request_info.headers["X-Tenant"] == "<redacted>"
    for text in (str(error), repr(error), error.body, repr(pickle.loads(pickle.dumps(error)))):
        assert AZURE_KEY not in text


async def test_key_echoed_in_a_stream_error_event_is_scrubbed(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VAR, "sk-live-abc123")
    reply = Reply.error_after_chunks("Hel", message="bad key sk-live-abc123", error_type="auth")
    upstream = await fake_upstream(reply)
    provider = OpenAICompatible(name="local", base_url=upstream.url + "/v1", api_key_env=VAR)
    seen: list[str] = []

    with pytest.raises(UpstreamError) as caught:
        async for chunk in provider.create_async_generator("m", MESSAGES):
            seen.append(chunk)

    assert seen == ["Hel"]
    assert upstream.requests[0].headers["Authorization"] == "Bearer sk-live-abc123"
    assert str(caught.value) == "local: error in stream: bad key <redacted>"
    assert repr(caught.value) == "UpstreamError('local: error in stream: bad key <redacted>')"


@pytest.mark.parametrize(
    ("options", "kind", "message"),
    [
        ({"headers_env": "API_KEY"}, TypeError, "option 'headers_env' must be a table of strings"),
        (
            {"headers_env": {"api-key": 1}},
            TypeError,
            "option 'headers_env' must map names to strings; 'api-key' does not",
        ),
        (
            {"headers_env": {"api key": "V"}},
            ValueError,
            "option 'headers_env': 'api key' is not a valid header name",
        ),
        (
            {"headers_env": {"api-key": "az-abc123-secret"}},
            ValueError,
            "option 'headers_env': the value for 'api-key' must be the NAME of an environment "
            "variable (like AZURE_OPENAI_API_KEY), not the key itself",
        ),
        (
            {"headers_env": {"api-key": "A", "API-KEY": "B"}},
            ValueError,
            "option 'headers_env' names header 'API-KEY' twice",
        ),
        (
            {"headers_env": {"X-Title": "V"}, "headers": {"x-title": "demo"}},
            ValueError,
            "option 'headers_env': header 'X-Title' is also given in headers; keep one",
        ),
        (
            {"headers_env": {"authorization": "V"}, "api_key_env": "OTHER"},
            ValueError,
            "option 'headers_env' sets 'Authorization', which the API key already fills "
            "(Bearer); keep one",
        ),
    ],
)
def test_bad_headers_env_is_refused_naming_the_option(
    options: dict[str, Any], kind: type[Exception], message: str
) -> None:
    with pytest.raises(kind) as caught:
        OpenAICompatible(name="x", base_url="http://127.0.0.1:1/v1", **options)

    assert str(caught.value).startswith(message)
    assert "abc123" not in str(caught.value)


def test_needs_auth_follows_the_configured_keys() -> None:
    def needs(**options: Any) -> bool:
        return OpenAICompatible(name="x", base_url="http://127.0.0.1:1/v1", **options).needs_auth

    assert not needs()
    assert not needs(headers_env={})
    assert needs(headers_env={"api-key": "V"})
    assert needs(api_key_env="V")
