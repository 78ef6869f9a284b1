"""The state of one chain call: who is left, the trace, health reporting, the hook.

`Call` is what the race (`providerhub.race`) drives: it starts attempts (skipping providers
that cannot serve, with the reason recorded), decides retries, records how each attempt ended,
reports it to the health store, logs one line and calls the `attempt_finished` hook.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..attempt import Attempt
from ..capabilities import adapt
from ..errors import DeadlinePassed
from ..provider import Provider, event_generator, guard, has_base_stream, is_guarded
from ..stream import ChatStream, ChunkStream
from ..timeouts import Timeouts
from . import policy
from .health import Ticket
from .race import Run

if TYPE_CHECKING:
    from .chain import FallbackChain

log = logging.getLogger("providerhub.routing")

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, "
    "without repeating anything you already wrote."
)
"""The instruction sent, after the partial answer, to the provider asked to continue it."""


class Call:
    """One chain call: the queue of members, the trace, and reporting of every attempt."""

    def __init__(
        self,
        chain: FallbackChain,
        stream: ChatStream,
        model: str,
        messages: list[dict[str, Any]],
        timeouts: Timeouts | None,
        kwargs: dict[str, Any],
        deadline: float | None,
        needs: frozenset[str],
    ) -> None:
        self.chain = chain
        self.stream = stream
        self.model = model
        self.messages = messages
        self.needs = needs
        """The capabilities the request needs (`providerhub.capabilities.required`)."""
        self.timeouts = timeouts
        self.kwargs = kwargs
        self.hedge_after = chain.hedge_after
        self.seconds = deadline
        loop = asyncio.get_running_loop()
        self.deadline = None if deadline is None else loop.time() + deadline
        """Loop time after which no attempt may run, or None."""
        self.queue: deque[Provider] = deque(chain.ordered())
        self.continuing = False
        self.interrupted = ""
        """The provider whose answer was cut most recently (for hand-overs)."""
        self.cleanups: list[asyncio.Task[None]] = []

    def out_of_time(self) -> bool:
        return self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline

    def next_run(self, hedged: bool) -> Run | None:
        if self.out_of_time():
            self._skip_rest()
            return None
        while self.queue:
            member = self.queue.popleft()
            why = self.chain.skip_reason(member, self.model, self.needs)
            if (
                why is None
                and self.continuing
                and not getattr(member, "supports_message_history", True)
            ):
                why = "cannot continue an answer (no message history)"
            ticket = None
            if why is None and not _is_chain(member):
                admitted = self.chain.health.admit(member.name)
                if isinstance(admitted, str):
                    why = admitted
                else:
                    ticket = admitted
            if why is not None:
                self._report(Attempt(member.name, "skipped", why, continuation=self.continuing))
                continue
            return self._start(member, 1, hedged, 0.0, ticket)
        return None

    def _skip_rest(self) -> None:
        while self.queue:
            member = self.queue.popleft()
            self._report(Attempt(member.name, "skipped", "deadline passed"))

    def _start(
        self, member: Provider, number: int, hedged: bool, delay: float, ticket: Ticket | None
    ) -> Run:
        attempt = Attempt(
            member.name, "failed", try_number=number, hedged=hedged, continuation=self.continuing
        )
        run = Run(member, attempt, ticket)
        run.start(self._opener(member, attempt), delay)
        return run

    def _opener(self, member: Provider, attempt: Attempt) -> Callable[[], ChunkStream]:
        """How to send the request: through `stream()` for an AsyncGeneratorProvider (its
        stream reports finish_reason and usage; a nested chain's also its attempts), else through
        `create_event_generator` (or `create_async_generator`) of any other provider object;
        under the guard unless the member applies it itself (a chain guards each of its own
        attempts)."""
        model, messages, timeouts, kwargs = self.model, self.messages, self.timeouts, self.kwargs

        def open_stream() -> ChunkStream:
            options = kwargs if timeouts is None else {**kwargs, "timeout": timeouts}
            if has_base_stream(member):
                stream = member.stream(model, messages, **options)
                if isinstance(stream, ChatStream):
                    attempt.inner = stream.attempts
                    return stream
                if is_guarded(member):
                    return stream
                return _Guarded(stream, timeouts or Timeouts(), member.name)
            if is_guarded(member):
                return ChunkStream(event_generator(member)(model, messages, **options))
            events = event_generator(member)(model, adapt(member, messages, kwargs), **options)
            return ChunkStream(guard(events, timeouts or Timeouts(), member.name))

        return open_stream

    def retry(self, run: Run, error: BaseException) -> Run | None:
        number = run.attempt.try_number
        if number > self.chain.retries or not policy.retryable(error) or self.out_of_time():
            return None
        ticket = None
        if run.ticket is not None:
            admitted = self.chain.health.admit(run.attempt.provider)
            if isinstance(admitted, str):
                return None
            ticket = admitted
        delay = policy.backoff(number + 1, self.chain.backoff)
        return self._start(run.member, number + 1, run.attempt.hedged, delay, ticket)

    def failed(self, run: Run, error: BaseException) -> None:
        attempt = run.attempt
        run.stop_clock()
        if isinstance(error, asyncio.CancelledError):
            self.cancelled(run, "cancelled")
            return
        attempt.outcome, attempt.error = "failed", error
        attempt.reason = policy.reason(error, attempt.provider)
        self._health_failure(run, error)
        self._report(attempt)

    def cancelled(self, run: Run, reason: str) -> None:
        run.stop_clock()
        run.attempt.outcome, run.attempt.reason = "cancelled", reason
        self._release(run)
        self._report(run.attempt)

    def expired(self, runs: list[Run]) -> None:
        for run in runs:
            run.stop_clock()
            error = DeadlinePassed(self.seconds or 0.0)
            run.attempt.outcome, run.attempt.error, run.attempt.reason = "failed", error, str(error)
            self._release(run)
            self._report(run.attempt)
        self._skip_rest()

    def won(self, run: Run) -> None:
        attempt = run.attempt
        attempt.outcome = "served"
        chunks = run.chunks
        if isinstance(chunks, ChatStream) and chunks.provider:
            attempt.reason = f"via {chunks.provider}"
            self.stream.provider = chunks.provider
            self.stream.route = f"{self.chain.name} > {chunks.route or chunks.provider}"
        else:
            self.stream.provider = attempt.provider
            self.stream.route = f"{self.chain.name} > {attempt.provider}"
        self.stream.attempts.append(attempt)
        if run.ticket is not None and attempt.time_to_first_chunk is not None:
            self.chain.health.first_chunk(attempt.provider, attempt.time_to_first_chunk)

    def served(self, run: Run, reason: str, *, completed: bool) -> None:
        """The winner's stream ended: completely (a success for its health), or stopped."""
        run.stop_clock()
        if reason:
            run.attempt.reason = f"{run.attempt.reason}; {reason}" if run.attempt.reason else reason
        if completed:
            self.stream.completed_by(run.chunks)
        if run.ticket is not None:
            if completed:
                self.chain.health.success(run.ticket)
            else:
                self.chain.health.release(run.ticket)
        self._log(run.attempt)

    def interrupt(self, run: Run, error: Exception) -> None:
        """The winner failed after its first chunk (or the deadline cut it)."""
        attempt = run.attempt
        run.stop_clock()
        attempt.outcome, attempt.error = "interrupted", error
        passed = isinstance(error, DeadlinePassed)
        attempt.reason = str(error) if passed else policy.reason(error, attempt.provider)
        self.interrupted = attempt.provider
        self._health_failure(run, error)
        self._log(attempt)

    def continue_after(self, text: str) -> None:
        """Ask the remaining providers to continue `text` rather than answer from scratch."""
        self.continuing = True
        self.messages = [
            *self.messages,
            {"role": "assistant", "content": text},
            {"role": "user", "content": CONTINUE_PROMPT},
        ]

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        self.cleanups.append(asyncio.get_running_loop().create_task(work))

    async def drain(self) -> None:
        """Await the background closing of losers (bounded); re-raise a cancellation after."""
        cancelled = False
        pending = [task for task in self.cleanups if not task.done()]
        while pending:
            try:
                await asyncio.wait(pending)
            except asyncio.CancelledError:
                cancelled = True
            pending = [task for task in pending if not task.done()]
        for task in self.cleanups:
            if not task.cancelled() and task.exception() is not None:
                log.debug("closing a lost attempt failed: %s", task.exception())
        self.cleanups.clear()
        if cancelled:
            raise asyncio.CancelledError

    def _health_failure(self, run: Run, error: BaseException) -> None:
        if run.ticket is None:
            return
        if policy.unhealthy(error) and not isinstance(error, DeadlinePassed):
            self.chain.health.failure(run.ticket, policy.retry_after(error))
        else:
            self.chain.health.release(run.ticket)

    def _release(self, run: Run) -> None:
        if run.ticket is not None:
            self.chain.health.release(run.ticket)

    def _report(self, attempt: Attempt) -> None:
        self.stream.attempts.append(attempt)
        self._log(attempt)

    def _log(self, attempt: Attempt) -> None:
        """One log line and one `attempt_finished` hook call per attempt, once it is final."""
        if log.isEnabledFor(logging.INFO):
            log.info("%s: %s%s", self.chain.name, attempt, attempt.details())
        registry = self.chain.registry
        try:
            if registry is None:
                from ..registry import default_registry

                registry = default_registry()
            registry.pm.hook.attempt_finished(attempt=attempt)
        except Exception:
            log.exception("an attempt_finished hook failed")


class _Guarded(ChunkStream):
    """A member's stream put under the guard (its class does not apply it), still reporting
    the member's finish_reason and usage."""

    __slots__ = ("_source",)

    def __init__(self, source: ChunkStream, timeouts: Timeouts, provider: str) -> None:
        super().__init__(guard(source.events(), timeouts, provider))
        self._source = source

    @property
    def finish_reason(self) -> str | None:
        return self._source.finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._source.usage


def _is_chain(member: object) -> bool:
    from .chain import FallbackChain

    return isinstance(member, FallbackChain)
