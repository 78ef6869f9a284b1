"""The guard's deadlines, enforced by one lazily moved timer per stream (timeouts.Watchdog).

In-memory streams, so each case isolates the timer logic: a wait that passes its deadline is cut
with the right phase, the consumer's own time between chunks is never cut, an earlier deadline
moves the timer forward, and an outside cancellation stays a cancellation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from providerhub import Timeouts, UpstreamTimeoutError
from providerhub.guard import guard

HANG_BOUND = 5.0


async def paced(*delays: float) -> AsyncIterator[str]:
    """Yield "c0", "c1", ... each after its delay."""
    for index, delay in enumerate(delays):
        await asyncio.sleep(delay)
        yield f"c{index}"


async def collect(chunks: AsyncIterator[str], pause: float = 0.0) -> list[str]:
    received = []
    async with asyncio.timeout(HANG_BOUND):
        async for chunk in chunks:
            received.append(chunk)
            if pause:
                await asyncio.sleep(pause)
    return received


async def test_a_slow_consumer_is_never_cut() -> None:
    limits = Timeouts(first_chunk=0.1, idle=0.1, total=HANG_BOUND)
    chunks = guard(paced(0, 0, 0, 0), limits, "p")
    assert await collect(chunks, pause=0.25) == ["c0", "c1", "c2", "c3"]


@pytest.mark.parametrize(
    ("delays", "limits", "phase", "received"),
    [
        ((0.5,), Timeouts(first_chunk=0.1, idle=1, total=HANG_BOUND), "first_chunk", []),
        ((0, 0, 0.5), Timeouts(first_chunk=1, idle=0.1, total=HANG_BOUND), "idle", ["c0", "c1"]),
        ((0, 0.1, 0.1, 0.1, 0.1), Timeouts(first_chunk=1, idle=1, total=0.25), "total", None),
    ],
    ids=["first chunk", "idle", "total"],
)
async def test_a_wait_past_its_deadline_is_cut_with_its_phase(
    delays: tuple[float, ...], limits: Timeouts, phase: str, received: list[str] | None
) -> None:
    got: list[str] = []
    with pytest.raises(UpstreamTimeoutError) as info:
        async with asyncio.timeout(HANG_BOUND):
            async for chunk in guard(paced(*delays), limits, "p"):
                got.append(chunk)
    assert info.value.phase == phase
    assert str(info.value).startswith(f"p: {phase.replace('_', ' ')} timeout after")
    if received is not None:
        assert got == received
    else:
        assert got == ["c0", "c1", "c2"][: len(got)] and 1 <= len(got) <= 3


async def test_an_earlier_idle_deadline_moves_the_timer_forward() -> None:
    limits = Timeouts(first_chunk=30, idle=0.1, total=60)
    started = time.perf_counter()
    with pytest.raises(UpstreamTimeoutError) as info:
        await collect(guard(paced(0, 10), limits, "p"))
    assert info.value.phase == "idle"
    assert time.perf_counter() - started < 3, "cut at the idle deadline, not the first-chunk one"


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    limits = Timeouts(first_chunk=0.2, idle=0.2, total=HANG_BOUND)
    task = asyncio.create_task(collect(guard(paced(10), limits, "p")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_the_deadline_firing_with_an_outside_cancellation_pending_stays_a_cancellation() -> (
    None
):
    limits = Timeouts(first_chunk=0.1, idle=0.1, total=HANG_BOUND)

    async def stubborn() -> AsyncIterator[str]:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # cleanup outlives the deadline; our cut lands on top
            raise
        yield "never"

    task = asyncio.create_task(collect(guard(stubborn(), limits, "p")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
