"""Upstream JSON nested deeper than Python recurses, and which event a malformed-stream error
quotes: over a loopback upstream, for the OpenAI and the Anthropic providers."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import MakeUpstream
from providerhub import MalformedStreamError, ServerSentEvent, UpstreamHTTPError
from providerhub.chat_completions import Completion, event_payloads, parse_events
from providerhub.testing import FakeUpstream, Reply
from providerhub_anthropic import AnthropicProvider
from providerhub_openai import OpenAICompatible

HELLO = [{"role": "user", "content": "Hello"}]
DEEP = "[" * 5000 + "]" * 5000
QUOTED = repr("[" * 300)
TEXT = '{"choices": [{"delta": {"content": "a"}}]}'
BAD = '{"choices": [{"delta": {"tool_calls": [{"index": "x"}]}}]}'


def openai(upstream: FakeUpstream) -> OpenAICompatible:
    return OpenAICompatible(name="local", base_url=upstream.url + "/v1", default_model="m")


def claude(upstream: FakeUpstream) -> AnthropicProvider:
    return AnthropicProvider(
        name="claude", base_url=upstream.url, default_model="c", api_key="test-only"
    )


async def failure(provider: Any, **params: Any) -> MalformedStreamError:
    with pytest.raises(MalformedStreamError) as caught:
        await provider.create_async("", HELLO, **params)
    return caught.value


async def test_deep_openai_event_is_a_malformed_stream(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.events(TEXT, DEEP, "[DONE]"))

    error = await failure(openai(up))

    assert str(error) == f"local: malformed event: {QUOTED}"
    assert error.excerpt == "[" * 300


async def test_deep_openai_body_is_a_malformed_completion(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.raw_bytes(DEEP.encode()))

    error = await failure(openai(up), stream=False)

    assert str(error) == f"local: malformed completion: {QUOTED}"


async def test_deep_anthropic_event_is_a_malformed_stream(fake_upstream: MakeUpstream) -> None:
    body = f"event: message_start\ndata: {DEEP}\n\n".encode()
    up = await fake_upstream(Reply.raw_bytes(body), wire="anthropic")

    error = await failure(claude(up))

    assert str(error) == f"claude: malformed event: {QUOTED}"


async def test_deep_anthropic_body_is_a_malformed_message(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.raw_bytes(DEEP.encode()), wire="anthropic")

    error = await failure(claude(up), stream=False)

    assert str(error) == f"claude: malformed message: {QUOTED}"


def test_deep_lines_of_one_event_are_malformed() -> None:
    event = ServerSentEvent(f"{TEXT}\n{DEEP}")

    with pytest.raises(MalformedStreamError) as caught:
        list(event_payloads(event, "local"))

    assert str(caught.value) == f"local: malformed event: {QUOTED}"


async def test_a_bad_delta_quotes_its_own_event(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.events(TEXT, BAD, TEXT, "[DONE]"))

    error = await failure(openai(up))

    assert str(error) == f"local: event is not a chat.completion.chunk: {BAD!r}"


def test_a_bad_line_of_a_joined_event_is_quoted_alone() -> None:
    """An upstream that never ends its events: the bad line is quoted, not the whole batch."""
    events = [ServerSentEvent(f"{TEXT}\n{BAD}\n{TEXT}\n[DONE]")]
    out: list[Any] = []

    with pytest.raises(MalformedStreamError) as caught:
        parse_events(events, Completion(), "local", out)

    assert str(caught.value) == f"local: event is not a chat.completion.chunk: {BAD!r}"
    assert out == ["a"]


async def test_deep_error_body_is_quoted(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.error(500, body=DEEP))

    with pytest.raises(UpstreamHTTPError) as caught:
        await openai(up).create_async("", HELLO)

    assert caught.value.message == "[" * 300
