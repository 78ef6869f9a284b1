"""The race to a first chunk: attempts in turn, retries, and hedged attempts in parallel.

Without hedging one attempt runs at a time: on failure it is retried (when the chain allows)
or the next eligible provider starts. With `hedge_after`, an attempt that has produced nothing
after that many seconds gets company: the next eligible provider starts alongside, the first
chunk wins, and every other attempt is cancelled and its connection closed.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from .stream import Run


class Racer(Protocol):
    """What the race needs from a chain call: starting attempts and recording their ends."""

    hedge_after: float | None

    def next_run(self, hedged: bool) -> Run | None:
        """Start the next eligible provider (recording skips on the way), or None if none left."""
        ...

    def retry(self, run: Run, error: BaseException) -> Run | None:
        """Start a retry of a failed attempt when its error and the chain allow one."""
        ...

    def failed(self, run: Run, error: BaseException) -> None: ...

    def cancelled(self, run: Run, reason: str) -> None: ...

    def won(self, run: Run) -> None: ...


async def race(call: Racer) -> Run | None:
    """The attempt that produced a first chunk (its stream open), or None when every one failed."""
    loop = asyncio.get_running_loop()
    running: list[Run] = []
    exhausted = False
    try:
        while True:
            if not running:
                first = None if exhausted else call.next_run(hedged=False)
                if first is None:
                    return None
                running.append(first)
            timeout = None
            if call.hedge_after is not None and not exhausted:
                latest = max(run.begins for run in running)
                timeout = max(0.0, latest + call.hedge_after - loop.time())
            tasks = {run.task for run in running if run.task is not None}
            done, _ = await asyncio.wait(
                tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                hedge = call.next_run(hedged=True)
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
                    await _settle_losers(call, running, run)
                    call.won(run)
                    return run
                await run.close()
                call.failed(run, error)
                again = call.retry(run, error)
                if again is not None:
                    running.append(again)
    except BaseException:
        for run in running:
            await run.close()
            call.cancelled(run, "stopped by the consumer")
        raise


async def _settle_losers(call: Racer, running: list[Run], winner: Run) -> None:
    """Close every other attempt: failed if it had already failed, else cancelled."""
    losers = list(running)
    running.clear()
    for run in losers:
        error = run.error() if run.task is not None and run.task.done() else None
        await run.close()
        if error is not None:
            call.failed(run, error)
        else:
            call.cancelled(run, f"lost the race to {winner.attempt.provider}")
