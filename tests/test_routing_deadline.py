"""Chain timing: the default timeouts that beat the headline hang, and the whole-call deadline."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import MakeUpstream
from providerhub import (
    AllProvidersFailedError,
    DeadlinePassed,
    FallbackChain,
    MemoryHealthStore,
    StreamInterruptedError,
    Timeouts,
)
from providerhub.testing import Reply
from routing_helpers import MESSAGES, admitted, provider


def test_default_timeouts_fail_over_from_a_hang_well_before_40s() -> None:
    chain = FallbackChain([provider("a"), provider("b")])
    assert chain.timeouts is None
    assert chain.deadline is None
    defaults = Timeouts()
    assert (defaults.connect, defaults.first_chunk, defaults.idle, defaults.total) == (
        10.0,
        20.0,
        30.0,
        600.0,
    )
    assert Timeouts.coerce(None) == defaults


async def test_hang_before_headers_fails_over_at_the_first_chunk_deadline(
    fake_upstream: MakeUpstream,
) -> None:
    hang = await fake_upstream(Reply.hang())
    good = await fake_upstream(Reply.text("ok"))
    chain = FallbackChain(
        [provider("hang", hang), provider("good", good)],
        timeouts=Timeouts(first_chunk=0.2),
        health=MemoryHealthStore(),
    )
    stream = chain.stream("", MESSAGES)
    async with asyncio.timeout(5):
        assert await stream.text() == "ok"
    assert [(a.provider, a.outcome, a.reason) for a in stream.attempts] == [
        ("hang", "failed", "first chunk timeout after 0.2s"),
        ("good", "served", ""),
    ]


async def test_deadline_bounds_the_whole_call_before_the_first_chunk(
    fake_upstream: MakeUpstream,
) -> None:
    hangs = [await fake_upstream(default=Reply.hang()) for _ in range(3)]
    health = MemoryHealthStore(failure_threshold=1)
    chain = FallbackChain(
        [provider(f"h{i}", up) for i, up in enumerate(hangs)],
        retries=1,
        timeouts=Timeouts(first_chunk=30),
        health=health,
    )
    started = time.monotonic()
    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.create_async("", MESSAGES, deadline=1)
    assert time.monotonic() - started < 3
    assert [(a.provider, a.outcome, a.reason) for a in caught.value.attempts] == [
        ("h0", "failed", "deadline passed (1s)"),
        ("h1", "skipped", "deadline passed"),
        ("h2", "skipped", "deadline passed"),
    ]
    assert "  h0: deadline passed (1s)" in str(caught.value)
    assert [len(up.requests) for up in hangs] == [1, 0, 0]
    assert admitted(health, "h0")


async def test_deadline_after_the_first_chunk_interrupts(fake_upstream: MakeUpstream) -> None:
    stall = await fake_upstream(Reply.hang_after_chunks("one "))
    good = await fake_upstream(default=Reply.text("never"))
    chain = FallbackChain(
        [provider("stall", stall), provider("good", good)],
        timeouts=Timeouts(idle=30),
        on_interrupt="continue",
        deadline=0.3,
        health=MemoryHealthStore(),
    )
    received = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with asyncio.timeout(5):
            async for chunk in chain.stream("", MESSAGES):
                received.append(chunk)
    assert received == ["one "] and caught.value.text == "one "
    assert isinstance(caught.value.__cause__, DeadlinePassed)
    assert [(a.provider, a.outcome, a.reason) for a in caught.value.attempts] == [
        ("stall", "interrupted", "deadline passed (0.3s)"),
        ("good", "skipped", "deadline passed"),
    ]
    assert good.requests == []
