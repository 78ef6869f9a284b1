"""One chain call: attempts, retries and hand-overs, the trace, health and hook reporting.

A `Call` is made from a `Plan` (the frozen part of its chain it needs) and a `Request`
(`providerhub.routing.plan`); it never sees the chain. `Call.events()` is the answer: the race
(`providerhub.routing.race`) picks the first provider to produce a chunk, the call streams it,
and a failure after that first chunk either raises StreamInterruptedError with the text
delivered or, with `on_interrupt="continue"`, hands the answer to the next provider (never one
that had begun a tool call or a refusal). The call keeps the trace (`attempts`), who serves
(`provider`, `route`) and what the serving stream reported (`finish_reason`, `usage`); the
caller's ChatStream reads them. Every attempt, once final, is logged on "providerhub.routing"
and reported to the plan's hook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any

from ..attempt import Attempt
from ..errors import (
    AllProvidersFailedError,
    AtCapacityError,
    DeadlinePassed,
    SpuriousCancellation,
    StreamInterruptedError,
)
from ..events import Event, RefusalDelta, ToolCallDelta
from ..messages import CheckedMessages
from ..provider import Provider, open_stream
from ..stream import ChunkStream
from ..timeouts import DEFAULT_TIMEOUTS
from . import policy
from .health import Refusal, Ticket
from .plan import CONTINUE_PROMPT, Member, Plan, Request
from .race import Deadline, Run, close_all, close_quietly, race
from .stream import ChatStream

log = logging.getLogger("providerhub.routing")

TRIAL_WAIT = 20.0
"""Most seconds a last resort waits for a provider's trials to answer (`Call._admit`)."""
TRIAL_POLL = 0.01
"""Seconds between a waiting last resort's first asks of the store (doubling, up to 8x)."""


class Call:
    """One chain call: the queue of members, the trace, and reporting of every attempt."""

    def __init__(self, plan: Plan, request: Request) -> None:
        self.plan = plan
        self.request = request
        self.messages = request.messages
        self.queue: list[Member] = list(reversed(plan.members))
        """The members not tried yet, the next one last (a list: a deque costs 600 bytes)."""
        self.attempts: list[Attempt] = []
        """Every provider considered so far, in order; final once the answer has ended."""
        self.provider: str | None = None
        """The provider now serving (inside nested chains too), once one produced a chunk."""
        self.route: str | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.hedge_after = plan.hedge_after
        self.deadline: Deadline | None = None
        self.continuing = False
        self.interrupted = ""
        """The provider whose answer was cut most recently (for hand-overs)."""
        self._cleanups: list[asyncio.Task[None]] = []

    async def events(self) -> AsyncGenerator[Event, None]:
        """The answer's events, from whichever provider serves it."""
        if self.request.deadline is not None:
            self.deadline = Deadline.after(self.request.deadline)
        parts: list[str] = []
        not_text_begun = False  # a tool call or refusal was delivered: no continuing then
        cause: BaseException | None = None
        try:
            while True:
                run = await self._race()
                if run is None:
                    if cause is not None:
                        text = "".join(parts)
                        raise StreamInterruptedError(self.interrupted, text, self.attempts, cause)
                    raise AllProvidersFailedError(self.attempts)
                chunks = run.chunks
                assert chunks is not None
                try:
                    events = chunks.events()
                    rest = events if self.deadline is None else _until(events, self.deadline)
                    chunk = run.first
                    while True:
                        if chunk:
                            if isinstance(chunk, str):
                                parts.append(chunk)
                            elif isinstance(chunk, ToolCallDelta | RefusalDelta):
                                not_text_begun = True
                            yield chunk
                        try:
                            chunk = await anext(rest)
                        except StopAsyncIteration:
                            break
                except BaseException as exc:
                    error = _failure(exc, run.attempt.provider)
                    if error is None:
                        self._served(run, "stopped by the consumer", completed=False)
                        raise
                    cause = error
                    self._interrupt(run, error)
                    if self.plan.on_interrupt == "raise" or not_text_begun:
                        text = "".join(parts)
                        raise StreamInterruptedError(
                            run.attempt.provider, text, self.attempts, error
                        ) from error
                    self._continue_after("".join(parts))
                    continue
                finally:
                    await close_quietly(chunks, run.attempt.provider)
                self._served(run, "", completed=True)
                return
        finally:
            await self._drain()

    async def _race(self) -> Run | None:
        """The winner of the next race (its losers settled and closing), or None."""
        won = await race(self)
        if won is None:
            if self._out_of_time():
                self._skip_rest()
            return None
        run, losers = won
        for loser in losers:
            error = loser.error() if loser.task is not None and loser.task.done() else None
            if error is not None and not isinstance(error, asyncio.CancelledError):
                self.ended(loser, error)
            else:
                self.ended(loser, f"lost the race to {run.attempt.provider}")
        self._won(run)
        if losers:
            self._background(close_all(losers))
        return run

    def _out_of_time(self) -> bool:
        return self.deadline is not None and self.deadline.passed()

    async def next_run(self, hedged: bool) -> Run | None:
        """Start the next eligible provider (recording skips on the way), or None if none left."""
        if self._out_of_time():
            self._skip_rest()
            return None
        plan, request = self.plan, self.request
        while self.queue:
            member = self.queue.pop()
            provider = member.provider
            ruled_out = policy.skip(
                provider,
                request.model,
                request.needs,
                ignore_working=plan.ignore_working,
                continuing=self.continuing,
            )
            why, kind = (None, "") if ruled_out is None else (ruled_out.reason, ruled_out.kind)
            refusal: Refusal | None = None
            ticket = None
            if why is None and not member.nested:
                admitted = await self._admit(provider.name)
                if isinstance(admitted, Ticket):
                    ticket = admitted
                else:
                    refusal, why, kind = admitted, str(admitted), policy.refused(admitted)
            if why is not None:
                skip = Attempt(
                    provider.name,
                    "skipped",
                    why,
                    refusal,
                    continuation=self.continuing,
                    skipped_for=kind,
                )
                self._report(skip)
                continue
            return self._start(provider, 1, hedged, 0.0, ticket)
        return None

    async def _admit(self, provider: str) -> Ticket | Refusal:
        """The health store's leave to ask `provider`, within its cap on requests in flight
        and its trials while its health is unproven.

        With no other member left to ask (the last resort, a lone provider), a request the
        trials hold back waits for them instead of failing: until one answers (all go), the
        provider's circuit opens (refused, without sending), or `TRIAL_WAIT` (at most its
        first-chunk timeout and the deadline) has passed (it goes anyway). So a burst at an
        always-failing provider sends only what opens its circuit, and a burst at a healthy
        provider no one has measured yet is served once its first answer arrives.
        """
        limit = self.plan.limit
        cap = None if limit is None else limit(provider)
        health = self.plan.health
        admitted = await health.admit(provider, cap)
        if self.queue or not (isinstance(admitted, AtCapacityError) and admitted.unproven):
            return admitted
        loop = asyncio.get_running_loop()
        until = loop.time() + self._trial_wait()
        pause = TRIAL_POLL
        while loop.time() < until:
            await asyncio.sleep(pause)
            pause = min(pause * 2, TRIAL_POLL * 8)
            admitted = await health.admit(provider, cap)
            if not (isinstance(admitted, AtCapacityError) and admitted.unproven):
                return admitted
        return await health.admit(provider, cap, last_resort=True)

    def _trial_wait(self) -> float:
        """How long a last resort waits for the trials: `TRIAL_WAIT`, its first-chunk timeout
        and what is left of the deadline, whichever is least."""
        timeouts = self.request.timeouts or DEFAULT_TIMEOUTS
        bounds = [TRIAL_WAIT, timeouts.first_chunk or TRIAL_WAIT]
        if self.deadline is not None:
            bounds.append(self.deadline.left())
        return min(bounds)

    def _skip_rest(self) -> None:
        assert self.deadline is not None
        passed = DeadlinePassed(self.deadline.seconds)
        while self.queue:
            member = self.queue.pop()
            name = member.provider.name
            self._report(
                Attempt(name, "skipped", "deadline passed", passed, skipped_for="deadline")
            )

    def _start(
        self, member: Provider, number: int, hedged: bool, delay: float, ticket: Ticket | None
    ) -> Run:
        attempt = Attempt(
            member.name, "failed", try_number=number, hedged=hedged, continuation=self.continuing
        )
        run = Run(member, attempt, ticket)
        inline = self.hedge_after is None and self.deadline is None
        run.start(self._opener(member, attempt), delay, inline=inline)
        return run

    def _opener(self, member: Provider, attempt: Attempt) -> Callable[[], ChunkStream]:
        """How to send the request to `member` (`providerhub.provider.open_stream`); a nested
        chain's attempts become this attempt's `inner`."""
        request, messages = self.request, self.messages
        options = request.params
        if request.timeouts is not None:
            options = {**options, "timeout": request.timeouts}

        def send() -> ChunkStream:
            # Each attempt gets its own copy of the messages (not checked again), so a member
            # that modifies them cannot change what the next one is sent.
            own = CheckedMessages([dict(message) for message in messages])
            stream = open_stream(member, request.model, own, **options)
            if isinstance(stream, ChatStream):
                attempt.inner = stream.attempts
            return stream

        return send

    async def retry(self, run: Run, error: BaseException) -> Run | None:
        """Start a retry of a failed attempt when its error and the plan allow one."""
        number = run.attempt.try_number
        if number > self.plan.retries or not policy.retryable(error) or self._out_of_time():
            return None
        ticket = None
        if run.ticket is not None:
            admitted = await self._admit(run.attempt.provider)
            if not isinstance(admitted, Ticket):
                return None
            ticket = admitted
        delay = policy.backoff(number + 1, self.plan.backoff)
        return self._start(run.member, number + 1, run.attempt.hedged, delay, ticket)

    def ended(self, run: Run, how: BaseException | str) -> None:
        """A run is over without winning: failed with an error, or cancelled for reason `how`."""
        attempt = run.attempt
        run.stop_clock()
        if isinstance(how, asyncio.CancelledError):
            how = "cancelled"
        if isinstance(how, str):
            attempt.outcome, attempt.reason = "cancelled", how
            self._release(run)
        else:
            attempt.outcome, attempt.error = "failed", how
            attempt.reason = policy.reason(how, attempt.provider)
            self._health_failure(run, how)
        self._report(attempt)

    def _won(self, run: Run) -> None:
        attempt = run.attempt
        attempt.outcome = "served"
        chunks = run.chunks
        if isinstance(chunks, ChatStream) and chunks.provider:
            attempt.reason = f"via {chunks.provider}"
            self.provider = chunks.provider
            self.route = f"{self.plan.name} > {chunks.route or chunks.provider}"
        else:
            self.provider = attempt.provider
            self.route = f"{self.plan.name} > {attempt.provider}"
        self.attempts.append(attempt)
        if run.ticket is not None and attempt.time_to_first_chunk is not None:
            self.plan.health.first_chunk(attempt.provider, attempt.time_to_first_chunk)

    def _served(self, run: Run, reason: str, *, completed: bool) -> None:
        """The winner's stream ended: completely (a success for its health), or stopped."""
        run.stop_clock()
        if reason:
            run.attempt.reason = f"{run.attempt.reason}; {reason}" if run.attempt.reason else reason
        if completed:
            self.finish_reason = _typed(getattr(run.chunks, "finish_reason", None), str)
            self.usage = _typed(getattr(run.chunks, "usage", None), dict)
        if run.ticket is not None:
            if completed:
                self.plan.health.success(run.ticket)
            else:
                self.plan.health.release(run.ticket)
        self._log(run.attempt)

    def _interrupt(self, run: Run, error: Exception) -> None:
        """The winner failed after its first chunk (or the deadline cut it)."""
        attempt = run.attempt
        run.stop_clock()
        attempt.outcome, attempt.error = "interrupted", error
        attempt.reason = policy.reason(error, attempt.provider)
        self.interrupted = attempt.provider
        self._health_failure(run, error)
        self._log(attempt)

    def _continue_after(self, text: str) -> None:
        """Ask the remaining providers to continue `text` rather than answer from scratch."""
        self.continuing = True
        self.messages = CheckedMessages(
            [
                *self.messages,
                {"role": "assistant", "content": text},
                {"role": "user", "content": CONTINUE_PROMPT},
            ]
        )

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        self._cleanups.append(asyncio.get_running_loop().create_task(work))

    async def _drain(self) -> None:
        """Await the background closing of losers (bounded); re-raise a cancellation after."""
        cancelled = False
        pending = [task for task in self._cleanups if not task.done()]
        while pending:
            try:
                await asyncio.wait(pending)
            except asyncio.CancelledError:
                cancelled = True
            pending = [task for task in pending if not task.done()]
        for task in self._cleanups:
            if not task.cancelled() and task.exception() is not None:
                log.debug("closing a lost attempt failed: %s", task.exception())
        self._cleanups.clear()
        if cancelled:
            raise asyncio.CancelledError

    def _health_failure(self, run: Run, error: BaseException) -> None:
        if run.ticket is None:
            return
        if policy.unhealthy(error):
            retry_after = policy.retry_after(error)
            self.plan.health.failure(run.ticket, retry_after, run.attempt.reason)
        else:
            self.plan.health.release(run.ticket)

    def _release(self, run: Run) -> None:
        if run.ticket is not None:
            self.plan.health.release(run.ticket)

    def _report(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self._log(attempt)

    def _log(self, attempt: Attempt) -> None:
        """One log line and one hook call per attempt, once it is final."""
        if log.isEnabledFor(logging.INFO):
            log.info("%s: %s%s", self.plan.name, attempt, attempt.details())
        if self.plan.report is not None:
            self.plan.report(attempt)


def _failure(exc: BaseException, provider: str) -> Exception | None:
    """The provider failure `exc` stands for, or None when the consumer stopped the stream.

    A CancelledError while the task was not cancelled came from the provider itself.
    """
    if isinstance(exc, Exception):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None and task.cancelling() == 0:
            return SpuriousCancellation(provider)
    return None


async def _until(chunks: AsyncIterator[Event], deadline: Deadline) -> AsyncIterator[Event]:
    """`chunks`, cut with DeadlinePassed once the deadline is reached."""
    while True:
        scope = asyncio.timeout_at(deadline.at)
        try:
            async with scope:
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if scope.expired():
                raise DeadlinePassed(deadline.seconds) from None
            raise
        yield chunk


def _typed(value: Any, kind: type) -> Any:
    """`value` when it is a `kind`, else None (a member's stream may report anything)."""
    return value if isinstance(value, kind) else None
