"""FallbackChain under concurrency: hedging, cancellation, shuffling, many streams at once."""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import BOUND, MakeUpstream, until
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    MemoryHealthStore,
    StreamInterruptedError,
    Timeouts,
    UpstreamError,
)
from providerhub.routing.race import CLOSE_LIMIT
from providerhub.testing import Reply
from routing_helpers import MESSAGES, ProviderObject, admitted, provider

FAST = Timeouts(connect=2, first_chunk=0.5, idle=0.5, total=10)
pytestmark = pytest.mark.usefixtures("fresh_health")


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
    assert admitted(health, "slow")


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
    assert admitted(health, "first") and admitted(health, "second")


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
    health.first_chunk("slow", 0.5)
    health.first_chunk("fast", 0.01)
    chain = FallbackChain(
        [provider("slow", slow), provider("fast", fast)], order="latency", health=health
    )
    assert await chain.create_async("", MESSAGES) == "fast"
    assert slow.requests == []


async def test_many_concurrent_streams_over_flaky_upstreams(fake_upstream: MakeUpstream) -> None:
    """200 streams at once; 30% of requests fault, before or after the first chunk.

    Every stream ends with the full text, or with an error each of whose attempts matches a
    fault actually scripted for that upstream (no timeout appears unless a hang was scripted).
    """
    rng = random.Random(7)
    text = "The quick brown fox"
    faults = {
        "500": Reply.error(500),
        "429": Reply.error(429),
        "empty": Reply.empty(),
        "hang": Reply.hang(),
        "cut": Reply.close_after_chunks("The quick "),
        "malformed": Reply.malformed_after_chunks("The quick "),
        "stall": Reply.hang_after_chunks("The quick "),
    }
    good = Reply.text("The quick ", "brown ", "fox", split=40)
    reasons = {
        "500": "HTTP 500: ",
        "429": "HTTP 429: ",
        "empty": "stream ended without any text",
        "hang": "first chunk timeout after 1s",
        "cut": "connection closed before the response was complete",
        "malformed": "malformed",
        "stall": "idle timeout after 1s",
    }

    def script(count: int) -> tuple[list[Reply], set[str]]:
        names = [rng.choice(sorted(faults)) for _ in range(count * 3 // 10)]
        replies = [faults[name] for name in names] + [good] * (count - len(names))
        rng.shuffle(replies)
        return replies, set(names)

    first_script, first_faults = script(200)
    second_script, second_faults = script(200)
    first = await fake_upstream(*first_script, default=good)
    second = await fake_upstream(*second_script, default=good)
    scripted = {"first": first_faults, "second": second_faults}
    chain = FallbackChain(
        [provider("first", first), provider("second", second)],
        timeouts=Timeouts(first_chunk=1.0, idle=1.0),
        health=MemoryHealthStore(failure_threshold=10**6),
    )

    async def one() -> tuple[str, BaseException | None]:
        received: list[str] = []
        try:
            async for chunk in chain.stream("", MESSAGES):
                received.append(chunk)
        except (AllProvidersFailedError, StreamInterruptedError) as exc:
            return "".join(received), exc
        return "".join(received), None

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(one() for _ in range(200)))
    interrupted = 0
    for received, error in results:
        if error is None:
            assert received == text
            continue
        if isinstance(error, StreamInterruptedError):
            interrupted += 1
            assert received == error.text and text.startswith(received) and received
        for attempt in error.attempts:  # type: ignore[attr-defined]
            if attempt.outcome in ("failed", "interrupted"):
                assert isinstance(attempt.error, UpstreamError)
                assert any(
                    reasons[name] in attempt.reason for name in scripted[attempt.provider]
                ), attempt.reason
            else:
                assert attempt.outcome == "served"
    served = sum(error is None for _, error in results)
    assert (
        served
        + interrupted
        + sum(isinstance(error, AllProvidersFailedError) for _, error in results)
        == 200
    )
    assert served >= 100 and interrupted >= 1
    await until(lambda: first.active == 0 and second.active == 0)


class _Stubborn(ProviderObject):
    """Never answers; when cancelled, takes its time to clean up (a slow close)."""

    name = "stubborn"

    def __init__(self, events: list[str], cleanup: float) -> None:
        self.events = events
        self.cleanup = cleanup

    async def create_async_generator(
        self, model: str, messages: Any, **kwargs: Any
    ) -> AsyncIterator[str]:
        try:
            await asyncio.sleep(100)
            yield "never"
        finally:
            self.events.append("loser cleanup start")
            try:
                await asyncio.sleep(self.cleanup)
            except asyncio.CancelledError:
                self.events.append("loser cleanup cut")
                raise
            self.events.append("loser cleanup end")


class _Winner(ProviderObject):
    name = "winner"

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def create_async_generator(
        self, model: str, messages: Any, **kwargs: Any
    ) -> AsyncIterator[str]:
        try:
            await asyncio.sleep(0.1)
            yield "w1"
            await asyncio.sleep(100)
            yield "w2"
        finally:
            self.events.append("winner closed")


def hedged(events: list[str], cleanup: float) -> FallbackChain:
    """A first member that never answers and takes `cleanup` seconds to close, hedged early."""
    return FallbackChain(
        [_Stubborn(events, cleanup), _Winner(events)], hedge_after=0.05, health=MemoryHealthStore()
    )


WINNER_STOPPED = [
    ("stubborn", "cancelled", "lost the race to winner"),
    ("winner", "served", "stopped by the consumer"),
]


async def test_hedged_winner_is_not_held_up_by_a_slow_loser() -> None:
    events: list[str] = []
    stream = hedged(events, 0.5).stream("", MESSAGES)
    async with asyncio.timeout(BOUND):
        assert await anext(stream) == "w1"
        events.append("winner first chunk")
        await stream.aclose()
    assert events[0] == "winner first chunk" and events[-1] == "loser cleanup end"
    assert sorted(events[1:3]) == ["loser cleanup start", "winner closed"]
    assert [(a.provider, a.outcome, a.reason) for a in stream.attempts] == WINNER_STOPPED


async def test_consumer_cancelled_while_losers_close() -> None:
    events: list[str] = []
    stream = hedged(events, 0.3).stream("", MESSAGES)

    async def read() -> None:
        async for _chunk in stream:
            events.append("chunk")

    task = asyncio.create_task(read())
    await until(lambda: "chunk" in events)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events[0] == "chunk" and events[-1] == "loser cleanup end"
    assert sorted(events[1:3]) == ["loser cleanup start", "winner closed"]
    assert [(a.provider, a.outcome, a.reason) for a in stream.attempts] == WINNER_STOPPED


async def test_a_loser_ignoring_cancellation_is_cut_after_the_close_limit() -> None:
    events: list[str] = []
    async with asyncio.timeout(CLOSE_LIMIT + BOUND):
        stream = hedged(events, 30).stream("", MESSAGES)
        assert await anext(stream) == "w1"
        await stream.aclose()
    assert sorted(events) == ["loser cleanup cut", "loser cleanup start", "winner closed"]


class TaskNoter(ProviderObject):
    """Answers "ok" and notes the task each request runs in; "flaky" first fails once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: list[asyncio.Task[Any] | None] = []

    async def create_async_generator(
        self, model: str, messages: Any, **kwargs: Any
    ) -> AsyncIterator[str]:
        self.tasks.append(asyncio.current_task())
        if self.name == "flaky" and len(self.tasks) == 1:
            raise UpstreamError(self.name, "first try fails")
        yield "ok"


@pytest.mark.parametrize("hedge_after", [None, 5.0])
async def test_unhedged_attempts_run_in_the_callers_task(hedge_after: float | None) -> None:
    # Nothing can run beside an attempt without hedging (nor cut it without a deadline), so
    # it is driven in the consumer's task; a hedged race drives each attempt in its own task.
    flaky, steady = TaskNoter("flaky"), TaskNoter("steady")
    chain = FallbackChain([flaky, steady], retries=1, backoff=0, hedge_after=hedge_after)
    stream = chain.stream("", MESSAGES)
    async with asyncio.timeout(BOUND):
        assert await stream.text() == "ok"
    assert [(a.provider, a.outcome, a.try_number) for a in stream.attempts] == [
        ("flaky", "failed", 1),
        ("flaky", "served", 2),
    ]
    assert steady.tasks == []
    me = asyncio.current_task()
    assert len(flaky.tasks) == 2
    assert all((task is me) == (hedge_after is None) for task in flaky.tasks)
