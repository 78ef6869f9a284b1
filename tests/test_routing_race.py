"""FallbackChain under concurrency: hedging, cancellation, shuffling, many streams at once."""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    MemoryHealthStore,
    Timeouts,
    UpstreamError,
    default_health_store,
)
from providerhub.testing import FakeUpstream, Reply
from providerhub_codelinkava import CodeLinkAva

MakeUpstream = Callable[..., Awaitable[FakeUpstream]]
MESSAGES = [{"role": "user", "content": "hi"}]
FAST = Timeouts(connect=2, first_chunk=0.5, idle=0.5, total=10)
BOUND = 5.0


def provider(name: str, upstream: FakeUpstream | None = None, **attrs: Any) -> type[CodeLinkAva]:
    url = upstream.url + "/api/chat" if upstream is not None else "http://127.0.0.1:1/api/chat"
    return type(name, (CodeLinkAva,), {"name": name, "working": True, "api_url": url, **attrs})


@pytest.fixture(autouse=True)
def fresh_health() -> Iterator[None]:
    default_health_store().reset()
    yield
    default_health_store().reset()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for something the server side observes asynchronously."""
    async with asyncio.timeout(BOUND):
        while not condition():  # noqa: ASYNC110 - polls counters the server updates
            await asyncio.sleep(0.01)


async def test_hedge_wins_and_the_loser_is_closed(fake_upstream: MakeUpstream) -> None:
    slow = await fake_upstream(Reply.hang())
    fast = await fake_upstream(Reply.text("hedged ", "answer"))
    health = MemoryHealthStore()
    chain = FallbackChain(
        [provider("slow", slow), provider("fast", fast)],
        hedge_after=0.05,
        timeouts=Timeouts(first_chunk=30),
        health=health,
    )
    stream = chain.stream("", MESSAGES)
    async with asyncio.timeout(BOUND):
        assert "".join([chunk async for chunk in stream]) == "hedged answer"
    assert stream.provider == "fast"
    assert [(a.provider, a.outcome, a.reason, a.hedged) for a in stream.attempts] == [
        ("slow", "cancelled", "lost the race to fast", True),
        ("fast", "served", "", True),
    ]
    await until(lambda: slow.disconnects == 1)
    assert slow.active == 0
    assert health.admit("slow") is None


async def test_hedge_not_started_when_first_is_quick(fake_upstream: MakeUpstream) -> None:
    quick = await fake_upstream(Reply.text("quick"))
    other = await fake_upstream(Reply.text("other"))
    chain = FallbackChain([provider("quick", quick), provider("other", other)], hedge_after=2.0)
    stream = chain.stream("", MESSAGES)
    assert await stream.text() == "quick"
    assert [(a.provider, a.hedged) for a in stream.attempts] == [("quick", False)]
    assert other.requests == []


async def test_hedged_failure_lets_the_other_continue(fake_upstream: MakeUpstream) -> None:
    slow_fail = await fake_upstream(Reply.text("late", delay=0.3))
    failing = await fake_upstream(Reply.error(500))
    chain = FallbackChain(
        [provider("slow", slow_fail), provider("failing", failing)],
        hedge_after=0.05,
        timeouts=Timeouts(first_chunk=5),
        health=MemoryHealthStore(),
    )
    stream = chain.stream("", MESSAGES)
    async with asyncio.timeout(BOUND):
        assert await stream.text() == "late"
    assert [(a.provider, a.outcome, a.hedged) for a in stream.attempts] == [
        ("failing", "failed", True),
        ("slow", "served", True),
    ]


async def test_consumer_aclose_closes_upstream(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("first "))
    chain = FallbackChain([provider("acme", upstream)], timeouts=Timeouts(idle=30))
    stream = chain.stream("", MESSAGES)
    async with asyncio.timeout(BOUND):
        assert await anext(stream) == "first "
        await stream.aclose()
    await until(lambda: upstream.disconnects == 1)
    assert [(a.provider, a.outcome, a.reason) for a in stream.attempts] == [
        ("acme", "served", "stopped by the consumer")
    ]


async def test_async_with_break_closes_upstream(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("first "))
    chain = FallbackChain([provider("acme", upstream)], timeouts=Timeouts(idle=30))
    async with asyncio.timeout(BOUND), chain.stream("", MESSAGES) as stream:
        async for _chunk in stream:
            break
    await until(lambda: upstream.disconnects == 1)


async def test_dropped_stream_closes_upstream(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("first "))
    chain = FallbackChain([provider("acme", upstream)], timeouts=Timeouts(idle=30))
    async with asyncio.timeout(BOUND):
        async for _chunk in chain.stream("", MESSAGES):
            break
    gc.collect()
    await until(lambda: upstream.disconnects == 1)


@pytest.mark.parametrize("hedge_after", [None, 0.05])
async def test_task_cancel_before_first_chunk_is_not_a_failure(
    fake_upstream: MakeUpstream, hedge_after: float | None
) -> None:
    first = await fake_upstream(Reply.hang())
    second = await fake_upstream(Reply.hang())
    health = MemoryHealthStore(failure_threshold=1)
    chain = FallbackChain(
        [provider("first", first), provider("second", second)],
        hedge_after=hedge_after,
        timeouts=Timeouts(first_chunk=30),
        health=health,
    )
    stream = chain.stream("", MESSAGES)
    task = asyncio.create_task(stream.text())
    await until(
        lambda: len(first.requests) == 1 and len(second.requests) == (hedge_after is not None)
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    expected = 2 if hedge_after else 1
    await until(lambda: first.disconnects + second.disconnects == expected)
    assert [a.outcome for a in stream.attempts] == ["cancelled"] * expected
    assert {a.reason for a in stream.attempts} == {"stopped by the consumer"}
    assert health.admit("first") is None and health.admit("second") is None


async def test_task_cancel_mid_stream(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.hang_after_chunks("first "))
    chain = FallbackChain([provider("acme", upstream)], timeouts=Timeouts(idle=30))
    started = asyncio.Event()

    async def read() -> None:
        async for _chunk in chain.stream("", MESSAGES):
            started.set()

    task = asyncio.create_task(read())
    async with asyncio.timeout(BOUND):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: upstream.disconnects == 1)


async def test_shuffle_covers_every_order() -> None:
    names = ["a", "b", "c"]
    chain = FallbackChain(
        [provider(name) for name in names],
        shuffle=True,
        timeouts=FAST,
        health=MemoryHealthStore(failure_threshold=10**6),
    )
    seen = set()
    for _ in range(120):
        with pytest.raises(AllProvidersFailedError) as caught:
            await chain.create_async("", MESSAGES)
        seen.add(tuple(a.provider for a in caught.value.attempts))
    assert seen == set(itertools.permutations(names))


async def test_latency_order_prefers_the_fastest(fake_upstream: MakeUpstream) -> None:
    slow = await fake_upstream(default=Reply.text("slow"))
    fast = await fake_upstream(default=Reply.text("fast"))
    health = MemoryHealthStore()
    health.success("slow", 0.5)
    health.success("fast", 0.01)
    chain = FallbackChain(
        [provider("slow", slow), provider("fast", fast)], order="latency", health=health
    )
    assert await chain.create_async("", MESSAGES) == "fast"
    assert slow.requests == []


async def test_many_concurrent_streams_over_flaky_upstreams(fake_upstream: MakeUpstream) -> None:
    rng = random.Random(7)
    faults = [
        Reply.error(500),
        Reply.error(429),
        Reply.empty(),
        Reply.close_after_chunks(),
        Reply.malformed_after_chunks(),
        Reply.hang(),
    ]
    good = Reply.text("The quick ", "brown ", "fox", split=40)

    def script(count: int) -> list[Reply]:
        replies = [rng.choice(faults) for _ in range(count * 3 // 10)]
        replies += [good] * (count - len(replies))
        rng.shuffle(replies)
        return replies

    first = await fake_upstream(*script(200), default=good)
    second = await fake_upstream(*script(200), default=good)
    chain = FallbackChain(
        [provider("first", first), provider("second", second)],
        timeouts=Timeouts(first_chunk=1.0, idle=5),
        health=MemoryHealthStore(),
    )

    async def one() -> str | BaseException:
        try:
            return await chain.create_async("", MESSAGES)
        except AllProvidersFailedError as exc:
            return exc

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(one() for _ in range(200)))
    served = [r for r in results if isinstance(r, str)]
    assert set(served) == {"The quick brown fox"}
    for error in results:
        if isinstance(error, AllProvidersFailedError):
            assert [a.provider for a in error.attempts] == ["first", "second"]
            assert {a.outcome for a in error.attempts} <= {"failed", "skipped"}
            for attempt in error.attempts:
                assert attempt.outcome == "skipped" or isinstance(attempt.error, UpstreamError)
    assert len(served) >= 150
    assert first.active == 0 and second.active == 0
