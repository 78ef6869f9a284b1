"""The race to a first chunk (any event: text or a tool call): attempts in turn, retries, and
hedged attempts in parallel.

Without hedging one attempt runs at a time: on failure it is retried (when the chain allows)
or the next eligible provider starts. With neither hedging nor a deadline nothing can run
beside it or cut it, so it runs in the caller's task, sparing a task and a hop through the
loop before the first chunk is handed on. With `hedge_after`, an attempt that has produced nothing
after that many seconds gets company: the next eligible provider starts alongside, the first
chunk wins, and every other attempt is cancelled. The winner is handed over at once with the
attempts it beat, whose connections the call closes concurrently in the background (each
within `CLOSE_LIMIT`) and awaits before its stream ends, so no task outlives the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..attempt import Attempt
from ..errors import DeadlinePassed, EmptyStreamError, SpuriousCancellation
from ..events import Event
from .health import Ticket

if TYPE_CHECKING:
    from ..stream import ChunkStream

__all__ = ["CLOSE_LIMIT", "Deadline", "Racer", "Run", "close_all", "close_quietly", "race"]

log = logging.getLogger("providerhub.routing")

CLOSE_LIMIT = 1.0
"""Seconds a provider gets to close a cancelled request before it is cancelled again."""


class Run:
    """One request to one provider, driven until its first non-empty event: in its own task,
    or (`inline`) by the race in its caller's task."""

    __slots__ = (
        "_delay",
        "_error",
        "_open",
        "attempt",
        "begins",
        "chunks",
        "first",
        "member",
        "started",
        "task",
        "ticket",
    )

    def __init__(self, member: Any, attempt: Attempt, ticket: Ticket | None) -> None:
        self.member = member
        self.attempt = attempt
        self.ticket = ticket
        """The health store's leave for this request; None for a nested chain (not tracked)."""
        self.chunks: ChunkStream | None = None
        """The member's stream once the request is sent (what the chain reads events,
        finish_reason, usage and a nested chain's trace from)."""
        self.task: asyncio.Task[Event] | None = None
        self.first: Event = ""
        self.begins = 0.0
        """Loop time at which the request is sent (after any retry backoff)."""
        self.started = 0.0
        self._open: Callable[[], ChunkStream] | None = None
        self._delay = 0.0
        self._error: Exception | None = None

    def start(
        self, open_stream: Callable[[], ChunkStream], delay: float = 0.0, *, inline: bool = False
    ) -> None:
        """Send the request (after `delay` seconds) and wait for its first event in a task;
        `inline`: only once the race awaits `settle` (then `task` stays None)."""
        loop = asyncio.get_running_loop()
        self.begins = loop.time() + delay
        if inline:
            self._open, self._delay = open_stream, delay
        else:
            self.task = loop.create_task(self._first_chunk(open_stream, delay))

    async def settle(self) -> Exception | None:
        """Run an inline attempt to its first event in the calling task: its failure, or None."""
        assert self._open is not None
        try:
            await self._first_chunk(self._open, self._delay)
        except Exception as exc:
            self._error = exc
        return self._error

    async def _first_chunk(self, open_stream: Callable[[], ChunkStream], delay: float) -> Event:
        if delay > 0:
            await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        self.started = loop.time()
        self.chunks = open_stream()
        try:
            async for chunk in self.chunks.events():
                if chunk:
                    self.first = chunk
                    self.attempt.time_to_first_chunk = loop.time() - self.started
                    return chunk
        except asyncio.CancelledError:
            if not _cancelled():
                raise SpuriousCancellation(self.attempt.provider) from None
            raise
        raise EmptyStreamError(self.attempt.provider)

    def error(self) -> BaseException | None:
        """The failure of a finished first-chunk task, or None if it produced a chunk."""
        if self.task is None:
            return self._error
        assert self.task.done()
        if self.task.cancelled():
            return asyncio.CancelledError()
        return self.task.exception()

    def stop_clock(self) -> None:
        """Set the attempt's duration from the moment its request was sent."""
        if self.started:
            self.attempt.duration = asyncio.get_running_loop().time() - self.started
        else:
            self.attempt.duration = 0.0

    async def close(self) -> None:
        """Cancel the request if it is still running and close its connection.

        A provider that takes longer than CLOSE_LIMIT to honour the cancellation is cancelled
        again, so closing is bounded.
        """
        task = self.task
        if task is not None:
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=CLOSE_LIMIT)
            if not task.cancelled():
                task.exception()
        try:
            async with asyncio.timeout(CLOSE_LIMIT):
                await close_quietly(self.chunks, self.attempt.provider)
        except TimeoutError:
            log.debug("closing %s's stream took over %gs", self.attempt.provider, CLOSE_LIMIT)


def _cancelled() -> bool:
    """Whether the current task was really asked to stop (not a stray CancelledError)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def close_quietly(chunks: AsyncIterator[Any] | None, provider: str) -> None:
    """Close a provider's chunk iterator (and so its connection); a failure to close is logged."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as exc:
        log.debug("closing %s's stream failed: %s", provider, exc)


async def close_all(runs: list[Run]) -> None:
    """Close several runs concurrently."""
    if runs:
        await asyncio.gather(*(run.close() for run in runs))


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a whole call must end: loop time `at`, `seconds` after it began."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline `seconds` from now (needs a running loop)."""
        return cls(asyncio.get_running_loop().time() + seconds, seconds)

    def passed(self) -> bool:
        return asyncio.get_running_loop().time() >= self.at

    def left(self) -> float:
        return max(0.0, self.at - asyncio.get_running_loop().time())


class Racer(Protocol):
    """What the race needs from a call: starting attempts, and hearing how the losing ones end."""

    hedge_after: float | None
    deadline: Deadline | None

    async def next_run(self, hedged: bool) -> Run | None:
        """Start the next eligible provider (recording skips on the way), or None if none left."""
        ...

    async def retry(self, run: Run, error: BaseException) -> Run | None:
        """Start a retry of a failed attempt when its error and the call allow one."""
        ...

    def ended(self, run: Run, how: BaseException | str) -> None:
        """A run is over without winning: failed with an error, or cancelled for reason `how`."""
        ...


async def race(call: Racer) -> tuple[Run, list[Run]] | None:
    """The attempt that produced a first chunk (its stream open) and the others still running
    (for the caller to settle and close), or None when every one failed or the deadline passed."""
    loop = asyncio.get_running_loop()
    running: list[Run] = []
    exhausted = False
    deadline = call.deadline
    try:
        while True:
            if not running:
                first = None if exhausted else await call.next_run(hedged=False)
                if first is None:
                    return None
                running.append(first)
            if running[0].task is None:  # inline: alone, nothing to hedge with or cut it
                run = running[0]
                failure = await run.settle()
                running.clear()
                if failure is None:
                    return run, []
                call.ended(run, failure)
                await run.close()
                again = await call.retry(run, failure)
                if again is not None:
                    running.append(again)
                continue
            timeout = None
            if call.hedge_after is not None and not exhausted:
                latest = max(run.begins for run in running)
                timeout = max(0.0, latest + call.hedge_after - loop.time())
            if deadline is not None:
                left = deadline.left()
                timeout = left if timeout is None else min(timeout, left)
            tasks = {run.task for run in running if run.task is not None}
            done, _ = await asyncio.wait(
                tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                if deadline is not None and deadline.passed():
                    cut = list(running)
                    running.clear()
                    for run in cut:
                        call.ended(run, DeadlinePassed(deadline.seconds))
                    await close_all(cut)
                    return None
                hedge = await call.next_run(hedged=True)
                if hedge is None:
                    exhausted = True
                else:
                    for run in running:
                        run.attempt.hedged = True
                    running.append(hedge)
                continue
            for run in list(running):
                if run.task not in done:
                    continue
                running.remove(run)
                error = run.error()
                if error is None:
                    losers = list(running)
                    running.clear()
                    return run, losers
                call.ended(run, error)
                await run.close()
                again = await call.retry(run, error)
                if again is not None:
                    running.append(again)
    except BaseException:
        cut = list(running)
        running.clear()
        for run in cut:
            call.ended(run, "stopped by the consumer")
        await close_all(cut)
        raise
