"""OpenAICompatible against a loopback FakeUpstream speaking OpenAI's wire format."""

from __future__ import annotations

from typing import Any

import providerhub
import pytest
from providerhub import (
    EmptyStreamError,
    InvalidRequestError,
    ModelNotSupportedError,
    Registry,
)
from providerhub.guard import GuardedStream
from providerhub.testing import FakeUpstream, Reply
from providerhub_openai import CompletionStream, OpenAICompatible

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def endpoint(upstream: FakeUpstream, **options: Any) -> OpenAICompatible:
    options.setdefault("name", "local")
    return OpenAICompatible(base_url=upstream.url + "/v1", **options)


async def test_exact_request(fake_upstream: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-123")
    upstream = await fake_upstream(Reply.text("Hi"))
    provider = endpoint(
        upstream,
        api_key_env="TEST_OPENAI_KEY",
        organization="org-1",
        headers={"X-Title": "providerhub"},
    )

    text = await provider.create_async(
        "gpt-4o-mini", MESSAGES, temperature=0.2, max_tokens=5, user="u1"
    )

    assert text == "Hi"
    [request] = upstream.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test-123"
    assert request.headers["OpenAI-Organization"] == "org-1"
    assert request.headers["X-Title"] == "providerhub"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "stream": True,
        "temperature": 0.2,
        "max_tokens": 5,
        "user": "u1",
        "stream_options": {"include_usage": True},
    }


async def test_secret_headers_are_sent_but_hidden(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.error(401, "bad api-key azure-key-123"))
    provider = endpoint(upstream, headers={"api-key": "azure-key-123"})

    with pytest.raises(providerhub.UpstreamHTTPError) as caught:
        await provider.create_async("m", MESSAGES)

    assert upstream.requests[0].headers["api-key"] == "azure-key-123"
    assert provider.headers == {"api-key": "<redacted>"}
    assert caught.value.message == "bad api-key <redacted>"


async def test_no_key_sends_no_authorization(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("ok"))
    provider = endpoint(upstream, default_model="llama3.2")

    assert await provider.create_async("", MESSAGES) == "ok"

    assert "Authorization" not in upstream.requests[0].headers
    assert upstream.requests[0].json["model"] == "llama3.2"
    assert provider.needs_auth is False


async def test_streams_chunks_in_order_skipping_role_and_empty_deltas(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("one ", "", "two ", "three", split=7))
    provider = endpoint(upstream)

    chunks = [chunk async for chunk in provider.create_async_generator("m", MESSAGES)]

    assert "".join(chunks) == "one two three"
    assert all(chunks), "role-only and empty deltas must not yield empty chunks"


async def test_stream_exposes_finish_reason_and_usage(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("a", "b", finish_reason="length", usage=USAGE))
    provider = endpoint(upstream)

    stream = provider.stream("m", MESSAGES, stream_options={"include_usage": True})
    assert isinstance(stream, GuardedStream) and isinstance(stream.source, CompletionStream)
    assert stream.finish_reason is None
    text = "".join([chunk async for chunk in stream])

    assert text == "ab"
    assert stream.finish_reason == "length"
    assert stream.usage == USAGE
    assert stream.source.completion.model == "m"
    assert stream.source.completion.id == "chatcmpl-fake"
    assert upstream.requests[0].json["stream_options"] == {"include_usage": True}


async def test_usage_is_asked_for_on_every_streamed_call(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("a", usage=USAGE), Reply.text("b", usage=USAGE))
    stream = endpoint(upstream).stream("m", MESSAGES)
    merged = endpoint(upstream).stream("m", MESSAGES, stream_options={"continuous_usage": False})

    assert [chunk async for chunk in stream] == ["a"]
    assert (stream.usage, stream.finish_reason) == (USAGE, "stop")
    assert await merged.text() == "b"
    assert merged.usage == USAGE
    assert [request.json["stream_options"] for request in upstream.requests] == [
        {"include_usage": True},
        {"continuous_usage": False, "include_usage": True},
    ]


async def test_stream_usage_off_leaves_stream_options_alone(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("a", usage=USAGE))
    provider = OpenAICompatible(
        name="local", base_url=upstream.url + "/v1", default_model="m", stream_usage=False
    )
    stream = provider.stream("m", MESSAGES)

    assert await stream.text() == "a"
    assert stream.usage is None
    assert "stream_options" not in upstream.requests[0].json


async def test_stream_options_must_be_an_object(fake_upstream: Any) -> None:
    upstream = await fake_upstream()
    with pytest.raises(InvalidRequestError, match=r"^stream_options must be an object, not str$"):
        endpoint(upstream).stream("m", MESSAGES, stream_options="yes")
    assert upstream.requests == []


async def test_every_keyword_but_the_transport_options_is_a_request_parameter(
    fake_upstream: Any,
) -> None:
    """The provider takes no private keywords: a field named like one goes upstream as it is."""
    upstream = await fake_upstream(Reply.text("x"))

    text = await endpoint(upstream).create_async("m", MESSAGES, completion="as sent")

    assert text == "x"
    sent = upstream.requests[0].json
    assert sent["completion"] == "as sent"
    assert "timeout" not in sent and "proxy" not in sent


async def test_non_streaming_call(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("Hello", " world", usage=USAGE))
    provider = endpoint(upstream)

    stream = provider.stream("m", MESSAGES, stream=False)
    chunks = [chunk async for chunk in stream]

    assert chunks == ["Hello world"]
    assert stream.finish_reason == "stop"
    assert stream.usage == USAGE
    request = upstream.requests[0]
    assert request.json["stream"] is False
    assert request.headers["Accept"] == "application/json"


async def test_supports_stream_false_uses_json_path(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("whole"))
    provider = endpoint(upstream, supports_stream=False)

    assert [chunk async for chunk in provider.create_async_generator("m", MESSAGES)] == ["whole"]
    assert upstream.requests[0].json["stream"] is False


async def test_done_without_trailing_blank_line_and_crlf(fake_upstream: Any) -> None:
    upstream = await fake_upstream(
        Reply.text("a", "b", line_ending="\r\n", keepalive=True), Reply.text("c", done=False)
    )
    provider = endpoint(upstream)

    assert await provider.create_async("m", MESSAGES) == "ab"
    assert await provider.create_async("m", MESSAGES) == "c", "finish_reason ends it without [DONE]"


async def test_nothing_after_done_is_read(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("a", "b", after_done=("{not json", "[DONE]")))

    assert await endpoint(upstream).create_async("m", MESSAGES) == "ab"


@pytest.mark.parametrize("split", [None, 5])
async def test_line_oriented_stream_without_blank_lines(
    fake_upstream: Any, split: int | None
) -> None:
    wire = Reply.text("Hel", "lo", usage={"total_tokens": 3}).wire(
        {"stream_options": {"include_usage": True}}
    )
    line_oriented = wire.replace(b"\n\n", b"\n") + b"data: {not json after done}\n"
    upstream = await fake_upstream(Reply.raw_bytes(line_oriented, split=split))
    stream = endpoint(upstream).stream("m", MESSAGES, stream_options={"include_usage": True})

    assert [chunk async for chunk in stream] == ["Hello"]
    assert (stream.finish_reason, stream.usage) == ("stop", {"total_tokens": 3})


async def test_empty_stream_is_an_error(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.empty(), Reply.text())
    provider = endpoint(upstream)

    with pytest.raises(EmptyStreamError):
        await provider.create_async("m", MESSAGES)
    with pytest.raises(EmptyStreamError):
        await provider.create_async("m", MESSAGES, stream=False)


def test_supports_model() -> None:
    listed = OpenAICompatible(
        name="a", base_url="http://127.0.0.1:1/v1", models=["x", "y"], default_model="z"
    )
    anything = OpenAICompatible(name="b", base_url="http://127.0.0.1:1/v1")

    assert [listed.supports_model(m) for m in ("x", "y", "z", "w", "")] == [
        True,
        True,
        True,
        False,
        True,
    ]
    assert anything.supports_model("whatever-model")
    assert not anything.supports_model(""), "no default model: '' cannot be served"


async def test_bad_calls_fail_before_any_request(fake_upstream: Any) -> None:
    upstream = await fake_upstream()
    listed = endpoint(upstream, models=["x"])
    bare = endpoint(upstream, name="bare")

    with pytest.raises(ModelNotSupportedError, match="'local' does not support model 'y'"):
        listed.create_async_generator("y", MESSAGES)
    with pytest.raises(InvalidRequestError, match="no model given and no default_model"):
        bare.create_async_generator("", MESSAGES)
    with pytest.raises(InvalidRequestError, match=r"messages\[0\] has no 'content'"):
        bare.create_async_generator("m", [{"role": "user"}])
    with pytest.raises(InvalidRequestError, match="stream must be true or false"):
        bare.create_async_generator("m", MESSAGES, stream="yes")
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "ftp://host"}, "must be an http:// or https:// URL"),
        ({"base_url": "https://user:pw@host/v1"}, "must not contain credentials"),
        ({"models": "gpt-4"}, "'models' must be a list of strings, not str"),
        ({"models": ["a", 3]}, r"'models\[\]' must be a non-empty string, not int"),
        ({"working": "yes"}, "'working' must be true or false, not str"),
        ({"api_key_env": "sk-abc-123"}, "must be the NAME of an environment variable"),
        ({"api_key": "k", "api_key_env": "K"}, "either 'api_key' or 'api_key_env'"),
        ({"headers": {"X": 1}}, "'headers' must map names to strings"),
    ],
)
def test_options_are_checked(options: dict[str, Any], message: str) -> None:
    options.setdefault("base_url", "http://127.0.0.1:1/v1")
    with pytest.raises((TypeError, ValueError), match=message):
        OpenAICompatible(name="x", **options)


def test_sync_create_completion() -> None:
    from providerhub.testing import serve_in_thread

    with serve_in_thread(Reply.text("s", "y", "nc")) as upstream:
        provider = endpoint(upstream)
        assert list(provider.create_completion("m", MESSAGES, stream=True)) == ["sync"]


def test_plugin_registers_the_openai_type_through_its_entry_point() -> None:
    registry = Registry.discover()

    assert registry.provider_types()["openai"] is OpenAICompatible
    source = registry.provider_type_source("OpenAI")
    assert source.distribution == "providerhub-openai"
    assert source.provider_types == ["openai"]
    assert not [error for error in registry.errors if error.plugin == "openai"]


def test_instances_register_like_any_provider() -> None:
    registry = Registry(entry_points=False)
    provider = OpenAICompatible(name="Groq", base_url="https://api.groq.com/openai/v1")
    registry.register(provider, plugin="config:test")

    assert registry.get("groq") is provider
    assert isinstance(provider, providerhub.Provider)
    assert provider.url == "https://api.groq.com/openai/v1"
