"""The provider contract: validation before I/O, sync and async calls, the timeout guard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, ClassVar, cast

import pytest
from helpers import BOUND, MakeUpstream, pointing, until
from providerhub import (
    AsyncGeneratorProvider,
    ChunkStream,
    Event,
    FallbackChain,
    InvalidRequestError,
    MemoryHealthStore,
    Messages,
    Timeouts,
    UpstreamHTTPError,
    UpstreamTimeoutError,
)
from providerhub.testing import FakeUpstream, Reply, serve_in_thread

MESSAGES = [{"role": "user", "content": "hi"}]


async def _stream(name: str, url: str, messages: Messages, **kwargs: Any) -> AsyncIterator[str]:
    """A minimal OpenAI-SSE client on the shared plumbing, as a plugin would write it."""
    from providerhub import http
    from providerhub.chat_completions import DONE, event_payloads

    timeouts = kwargs.pop("timeout")
    body = {"messages": messages, "stream": True, **kwargs}
    async with http.request(name, url, json_body=body, timeouts=timeouts) as response:
        async for events in http.read_events(response, name):
            for event in events:
                for payload in event_payloads(event, name):
                    if payload is DONE:
                        return
                    delta = payload["choices"][0]["delta"]
                    if delta.get("content"):
                        yield delta["content"]


class Streamer(AsyncGeneratorProvider):
    """Class-style provider (classmethods), like gpt4free's."""

    url = "http://127.0.0.1"
    working = True
    supports_gpt_35_turbo = True
    api_url = ""

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        async for chunk in _stream(cls.name, cls.api_url, messages, **kwargs):
            yield chunk


class Endpoint(AsyncGeneratorProvider):
    """Instance-style provider: one configured endpoint."""

    working = True

    def __init__(self, name: str, base_url: str, models: tuple[str, ...] = ()) -> None:
        self.name = name
        self.base_url = base_url
        self.models = models

    async def create_async_generator(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        async for chunk in _stream(
            self.name, self.base_url + "/chat/completions", messages, **kwargs
        ):
            yield chunk


Point = Callable[[FakeUpstream], type[Streamer]]


@pytest.fixture
def streamer(monkeypatch: pytest.MonkeyPatch) -> Point:
    return pointing(monkeypatch, Streamer)


async def collect(chunks: AsyncIterator[str]) -> list[str]:
    async with asyncio.timeout(BOUND):
        return [chunk async for chunk in chunks]


# Metadata and model support.


def test_name_defaults_to_class_name_and_instances_override() -> None:
    assert Streamer.name == "Streamer"
    assert Endpoint("local", "http://x").name == "local"


@pytest.mark.parametrize(
    ("model", "supported"),
    [
        ("", True),
        ("gpt-3.5-turbo", True),
        ("GPT-3.5-turbo-16k", True),
        ("gpt-4", False),
        ("gpt-4o", False),
        ("claude-3", False),
    ],
)
def test_supports_model_from_flags(model: str, supported: bool) -> None:
    assert Streamer.supports_model(model) is supported


def test_supports_model_from_models_and_default() -> None:
    class Both(Streamer):
        supports_gpt_4 = True
        default_model = "house-model"
        models = ("llama-3",)

    assert Both.supports_model("house-model")
    assert Both.supports_model("llama-3")
    assert Both.supports_model("gpt-4-turbo")
    assert not Both.supports_model("llama-2")
    endpoint = Endpoint("e", "http://x", models=("m1",))
    assert endpoint.supports_model("m1")
    assert not endpoint.supports_model("m2")
    assert not endpoint.supports_model("gpt-3.5-turbo")


# Bad input fails at call time, before any request.

BAD_CALLS: list[tuple[Any, Any, dict[str, Any], str]] = [
    (None, MESSAGES, {}, "model must be a string, not NoneType"),
    ("", [{"role": "user"}], {}, "messages[0] has no 'content'"),
    (
        "",
        [{"role": "user", "content": 1}],
        {},
        "messages[0].content must be a string or a list of content parts, not int",
    ),
    (
        "",
        MESSAGES,
        {"timeout": "soon"},
        "timeout must be a number of seconds or Timeouts, not 'soon'",
    ),
    ("", MESSAGES, {"timeout": -1}, "timeout must be a positive number of seconds, not -1"),
    ("", MESSAGES, {"proxy": 8080}, "proxy must be a URL string, not int"),
]


@pytest.mark.parametrize(("model", "messages", "kwargs", "message"), BAD_CALLS)
async def test_bad_input_raises_before_any_request(
    fake_upstream: MakeUpstream,
    streamer: Point,
    model: Any,
    messages: Any,
    kwargs: dict[str, Any],
    message: str,
) -> None:
    upstream = await fake_upstream(default=Reply.text("never"))
    provider = streamer(upstream)
    for call in (
        lambda: provider.create_async_generator(model, messages, **kwargs),
        lambda: provider.stream(model, messages, **kwargs),
        lambda: provider.create_async(model, messages, **kwargs),
        lambda: provider.create_completion(model, messages, stream=True, **kwargs),
    ):
        with pytest.raises(InvalidRequestError) as info:
            result = call()
            if asyncio.iscoroutine(result):
                await result
        assert str(info.value) == message
    assert upstream.requests == []


# Class-style and instance-style providers through the base-class calls.


async def test_class_style_create_async(fake_upstream: MakeUpstream, streamer: Point) -> None:
    upstream = await fake_upstream(Reply.text("Hel", "lo"), Reply.text("a", "b", split=3))
    provider = streamer(upstream)
    assert await provider.create_async("gpt-3.5-turbo", MESSAGES) == "Hello"
    assert await provider().create_async("", MESSAGES, temperature=0) == "ab"
    assert upstream.requests[1].json == {"messages": MESSAGES, "stream": True, "temperature": 0}


async def test_instance_style_create_async(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.text("x", "y"), Reply.text("z"))
    endpoint = Endpoint("local", upstream.url)
    assert await endpoint.create_async("m", MESSAGES) == "xy"
    assert await collect(endpoint.create_async_generator("m", MESSAGES)) == ["z"]
    assert [r.path for r in upstream.requests] == ["/chat/completions"] * 2


async def test_stream_on_class_and_instance_style_providers(
    fake_upstream: MakeUpstream, streamer: Point
) -> None:
    upstream = await fake_upstream(Reply.text("Hel", "lo"), Reply.text("x", "y"))
    streams = [
        streamer(upstream).stream("", MESSAGES, temperature=0),
        Endpoint("local", upstream.url).stream("m", MESSAGES),
    ]
    assert upstream.requests == [], "the request is sent on the first read"
    texts = []
    for stream in streams:
        assert isinstance(stream, ChunkStream)
        async with asyncio.timeout(BOUND), stream:
            texts.append([chunk async for chunk in stream])
        assert (stream.finish_reason, stream.usage) == (None, None)
    assert texts == [["Hel", "lo"], ["x", "y"]]
    assert [r.path for r in upstream.requests] == ["/api/chat", "/chat/completions"]
    assert upstream.requests[0].json == {"messages": MESSAGES, "stream": True, "temperature": 0}


async def test_stream_is_guarded_and_closes_upstream_when_stopped(
    fake_upstream: MakeUpstream, streamer: Point
) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("first"), Reply.hang())
    provider = streamer(upstream)
    async with asyncio.timeout(BOUND):
        async with provider.stream("", MESSAGES, timeout=30) as stream:
            assert await anext(stream) == "first"
        await until(lambda: upstream.disconnects == 1)
        with pytest.raises(UpstreamTimeoutError) as info:
            await provider.stream("", MESSAGES, timeout=Timeouts(first_chunk=0.2)).text()
    assert info.value.phase == "first_chunk"


def test_create_completion_without_running_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_in_thread(Reply.text("a", "b"), Reply.text("c", "d"), Reply.text("e")) as upstream:
        monkeypatch.setattr(Streamer, "api_url", upstream.url + "/api/chat")
        assert list(Streamer.create_completion("", MESSAGES)) == ["ab"]
        assert "".join(Streamer.create_completion("", MESSAGES, stream=True)) == "cd"
        endpoint = Endpoint("e", upstream.url)
        assert list(endpoint.create_completion("", MESSAGES, stream=True)) == ["e"]


async def test_create_completion_inside_running_loop(
    streamer: Point,
) -> None:
    script = (Reply.text("a", "b"), Reply.text("c", "d"), Reply.error(503, "busy"))
    with serve_in_thread(*script) as upstream:
        provider = streamer(upstream)
        assert list(provider.create_completion("", MESSAGES)) == ["ab"]
        assert "".join(provider.create_completion("", MESSAGES, stream=True)) == "cd"
        with pytest.raises(UpstreamHTTPError) as info:
            list(provider.create_completion("", MESSAGES))
        assert (info.value.status, info.value.message) == (503, "busy")


@pytest.mark.parametrize("in_loop", [False, True])
async def test_create_completion_early_break_closes_upstream(
    streamer: Point, in_loop: bool
) -> None:
    with serve_in_thread(Reply.hang_after_chunks("first")) as upstream:
        provider = streamer(upstream)

        def consume() -> str:
            chunks = cast(
                Generator[str, None, None],
                provider.create_completion("", MESSAGES, stream=True, timeout=30),
            )
            first = next(chunks)
            chunks.close()
            return first

        started = time.monotonic()
        first = consume() if in_loop else await asyncio.to_thread(consume)
        assert first == "first"
        assert time.monotonic() - started < BOUND
        await until(lambda: upstream.disconnects == 1 and upstream.active == 0)


async def test_async_consumer_break_closes_upstream(
    fake_upstream: MakeUpstream, streamer: Point
) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("first"))
    chunks = streamer(upstream).create_async_generator("", MESSAGES)
    async with asyncio.timeout(BOUND):
        assert await anext(chunks) == "first"
        await chunks.aclose()  # type: ignore[attr-defined]
    await until(lambda: upstream.disconnects == 1)


# The guard: wall-clock deadlines per phase.


async def _timeout_of(
    upstream: FakeUpstream, provider: type[Streamer], limits: Timeouts | float
) -> tuple[str, UpstreamTimeoutError]:
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError) as info:
        async with asyncio.timeout(BOUND):
            async for chunk in provider.create_async_generator("", MESSAGES, timeout=limits):
                received.append(chunk)
    assert time.monotonic() - started < BOUND
    await until(lambda: upstream.active == 0)
    return "".join(received), info.value


async def test_first_chunk_timeout_when_headers_never_come(
    fake_upstream: MakeUpstream, streamer: Point
) -> None:
    upstream = await fake_upstream(Reply.hang())
    limits = Timeouts(first_chunk=0.2, idle=30, total=30)
    text, error = await _timeout_of(upstream, streamer(upstream), limits)
    assert (text, error.phase, error.seconds, error.provider) == (
        "",
        "first_chunk",
        0.2,
        "Streamer",
    )
    assert str(error) == "Streamer: first chunk timeout after 0.2s"
    assert upstream.disconnects == 1


@pytest.mark.parametrize(
    ("reply", "limits", "expected"),
    [
        (
            Reply.hang_after_chunks("a", "b"),
            Timeouts(first_chunk=30, idle=0.2, total=30),
            ("ab", "idle", 0.2),
        ),
        (
            Reply.keepalive_trickle(0.02),
            Timeouts(first_chunk=0.3, idle=0.1, total=30),
            ("", "first_chunk", 0.3),
        ),
        (Reply.hang(), 0.2, ("", "total", 0.2)),
    ],
    ids=[
        "idle after some chunks",
        "keepalive-only trickle at first chunk",
        "number is a total capping every phase",
    ],
)
async def test_phase_timeout(
    fake_upstream: MakeUpstream,
    streamer: Point,
    reply: Reply,
    limits: Timeouts | float,
    expected: tuple[str, str, float],
) -> None:
    upstream = await fake_upstream(reply)
    text, error = await _timeout_of(upstream, streamer(upstream), limits)
    assert (text, error.phase, error.seconds) == expected


async def test_total_timeout_against_a_slow_trickle(
    fake_upstream: MakeUpstream, streamer: Point
) -> None:
    upstream = await fake_upstream(Reply.text(*"abcdefghij", delay=0.1))
    limits = Timeouts(first_chunk=30, idle=30, total=0.45)
    text, error = await _timeout_of(upstream, streamer(upstream), limits)
    assert (error.phase, error.seconds) == ("total", 0.45)
    assert text and "abcdefghij".startswith(text) and text != "abcdefghij"


async def test_guard_passes_a_full_stream_untouched(
    fake_upstream: MakeUpstream, streamer: Point
) -> None:
    upstream = await fake_upstream(Reply.text("a", "b", "c", delay=0.05))
    limits = Timeouts(first_chunk=2, idle=2, total=10)
    chunks = streamer(upstream).create_async_generator("", MESSAGES, timeout=limits)
    assert await collect(chunks) == ["a", "b", "c"]


class _Releasing(ChunkStream):
    """An implementation's own stream that must hear its close (it holds a connection)."""

    closed: ClassVar[list[str]] = []

    async def aclose(self) -> None:
        _Releasing.closed.append("released")
        await super().aclose()


class _Holder(AsyncGeneratorProvider):
    working = True

    @classmethod
    def create_event_generator(
        cls, model: str, messages: Messages, **params: Any
    ) -> AsyncIterator[Event]:
        async def events() -> AsyncIterator[Event]:
            for text in ("a", "b", "c"):
                yield text

        return _Releasing(events())


@pytest.mark.parametrize("how", ["read to the end", "stopped early", "through a chain"])
async def test_the_guard_closes_an_implementations_own_stream(how: str) -> None:
    _Releasing.closed.clear()
    if how == "through a chain":
        stream: ChunkStream = FallbackChain([_Holder], health=MemoryHealthStore()).stream(
            "", MESSAGES
        )
        assert await stream.text() == "abc"
    else:
        stream = _Holder.stream("", MESSAGES)
        async with stream:
            first = await anext(stream)
            if how == "read to the end":
                assert first + await stream.text() == "abc"
    assert _Releasing.closed == ["released"]
