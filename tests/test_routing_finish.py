"""A chain reports the serving stream's finish_reason and usage, also through nested chains and
after a hand-over; providers that report nothing leave them None."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from helpers import BOUND, MakeUpstream
from providerhub import (
    AsyncGeneratorProvider,
    ChunkStream,
    FallbackChain,
    MemoryHealthStore,
    Messages,
)
from providerhub.testing import FakeUpstream, Reply
from providerhub_openai import OpenAICompatible
from routing_helpers import FAST, MESSAGES, ProviderObject, consume, provider

USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
INCLUDE_USAGE = {"stream_options": {"include_usage": True}}


def endpoint(name: str, upstream: FakeUpstream) -> OpenAICompatible:
    return OpenAICompatible(name=name, base_url=upstream.url + "/v1", default_model="m")


async def test_chain_reports_the_serving_streams_finish_reason_and_usage(
    fake_upstream: MakeUpstream,
) -> None:
    bad = await fake_upstream(default=Reply.error(500))
    reply = Reply.text("a", "b", finish_reason="length", usage=USAGE, delay=0.05)
    good = await fake_upstream(reply)
    chain = FallbackChain(
        [provider("acme", bad), endpoint("local", good)], health=MemoryHealthStore()
    )
    stream = chain.stream("", MESSAGES, **INCLUDE_USAGE)
    assert (stream.finish_reason, stream.usage) == (None, None)
    async with asyncio.timeout(BOUND), stream:
        first = await anext(stream)
        assert (stream.finish_reason, stream.usage) == (None, None), "final only at the end"
        assert first + await stream.text() == "ab"
    assert stream.finish_reason == "length"
    assert stream.usage == USAGE
    assert [(a.provider, a.outcome) for a in stream.attempts] == [
        ("acme", "failed"),
        ("local", "served"),
    ]
    assert good.requests[0].json["stream_options"] == {"include_usage": True}


async def test_usage_is_reported_without_asking(fake_upstream: MakeUpstream) -> None:
    good = await fake_upstream(Reply.text("a", finish_reason="length", usage=USAGE))
    stream = FallbackChain([endpoint("local", good)], health=MemoryHealthStore()).stream(
        "", MESSAGES
    )
    assert await consume(stream) == "a"
    assert (stream.finish_reason, stream.usage) == ("length", USAGE)


async def test_nested_chain_propagates_them(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(default=Reply.error(500))
    good = await fake_upstream(Reply.text("ok", finish_reason="length", usage=USAGE))
    health = MemoryHealthStore()
    inner = FallbackChain(
        [provider("acme", bad), endpoint("local", good)], name="inner", health=health
    )
    outer = FallbackChain([inner], name="outer", health=health)
    stream = outer.stream("", MESSAGES, **INCLUDE_USAGE)
    assert await consume(stream) == "ok"
    assert stream.route == "outer > inner > local"
    assert (stream.finish_reason, stream.usage) == ("length", USAGE)


async def test_after_a_hand_over_they_are_the_finishing_providers(
    fake_upstream: MakeUpstream,
) -> None:
    cut = await fake_upstream(Reply.close_after_chunks("one ", usage={"total_tokens": 99}))
    good = await fake_upstream(Reply.text("two.", finish_reason="length", usage=USAGE))
    chain = FallbackChain(
        [endpoint("cut", cut), endpoint("good", good)],
        timeouts=FAST,
        on_interrupt="continue",
        health=MemoryHealthStore(),
    )
    stream = chain.stream("", MESSAGES, **INCLUDE_USAGE)
    assert await consume(stream) == "one two."
    assert [(a.provider, a.outcome) for a in stream.attempts] == [
        ("cut", "interrupted"),
        ("good", "served"),
    ]
    assert (stream.finish_reason, stream.usage) == ("length", USAGE)


async def test_a_provider_reporting_nothing_leaves_them_none(fake_upstream: MakeUpstream) -> None:
    good = await fake_upstream(Reply.text("hi", finish_reason="length", usage=USAGE))
    stream = FallbackChain([provider("ava", good)], health=MemoryHealthStore()).stream(
        "", MESSAGES, **INCLUDE_USAGE
    )
    assert await consume(stream) == "hi"
    assert (stream.finish_reason, stream.usage) == (None, None)


async def test_stopped_early_they_stay_none(fake_upstream: MakeUpstream) -> None:
    good = await fake_upstream(Reply.text("a", "b", finish_reason="length", split=1, delay=0.01))
    stream = FallbackChain([endpoint("local", good)], health=MemoryHealthStore()).stream(
        "", MESSAGES
    )
    async with asyncio.timeout(BOUND), stream:
        assert await anext(stream) == "a"
    assert (stream.finish_reason, stream.usage) == (None, None)


class Reporting(ChunkStream):
    """A stream that reports a finish_reason and usage of its own."""

    __slots__ = ()

    @property
    def finish_reason(self) -> str | None:
        return "content_filter"

    @property
    def usage(self) -> dict[str, Any] | None:
        return {"total_tokens": 1}


class Unguarded(AsyncGeneratorProvider):
    """A provider whose class does not apply the guard, with a stream() of its own."""

    guarded = False
    working = True

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        yield "x"

    @classmethod
    def stream(cls, model: str, messages: Messages, **kwargs: Any) -> ChunkStream:
        return Reporting(cls.create_async_generator(model, messages, **kwargs))


class Plain(ProviderObject):
    """A provider object that is no AsyncGeneratorProvider: its `stream` is not the chain's
    business (the protocol does not include it)."""

    name = "plain"

    async def create_async_generator(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        yield "plain"

    def stream(self, *args: Any, **kwargs: Any) -> ChunkStream:
        raise AssertionError("a chain must not call stream() on a plain provider object")


async def test_a_members_own_stream_is_used_even_unguarded() -> None:
    stream = FallbackChain([Unguarded], health=MemoryHealthStore()).stream("", MESSAGES)
    assert await consume(stream) == "x"
    assert (stream.finish_reason, stream.usage) == ("content_filter", {"total_tokens": 1})


async def test_plain_provider_objects_are_called_as_before() -> None:
    stream = FallbackChain([Plain()], health=MemoryHealthStore()).stream("", MESSAGES)
    assert await consume(stream) == "plain"
    assert stream.provider == "plain"
    assert (stream.finish_reason, stream.usage) == (None, None)
