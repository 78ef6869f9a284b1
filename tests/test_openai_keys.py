"""Keys an HTTP header cannot carry are refused by name before any request, never echoed;
parse errors share providerhub.http's excerpt length without importing aiohttp up front."""

from __future__ import annotations

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
    ServerSentEvent,
    UpstreamError,
    UpstreamHTTPError,
)
from providerhub.testing import Reply
from providerhub_openai import Completion, OpenAICompatible
from providerhub_openai.parse import parse_completion, parse_events

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
    monkeypatch.setattr("providerhub.http.EXCERPT_CHARS", 8)

    with pytest.raises(MalformedStreamError) as event:
        parse_events([ServerSentEvent(data="not json at all")], Completion(), "local")
    with pytest.raises(MalformedStreamError) as body:
        parse_completion(b"<html>gateway</html>", Completion(), "local")
    with pytest.raises(UpstreamError, match=r"^local: error in stream: overload$"):
        parse_events(
            [ServerSentEvent(data='{"error": {"message": "overloaded"}}')], Completion(), "local"
        )

    assert (event.value.excerpt, body.value.excerpt) == ("not json", "<html>ga")


def test_importing_the_plugin_does_not_import_aiohttp() -> None:
    script = "import sys, providerhub_openai; print('aiohttp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )

    assert done.stdout == "False\n"
