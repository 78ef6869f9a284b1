"""FallbackChain: try providers in turn until one answers, and say exactly what happened.

A chain skips providers that cannot serve (not working, model not supported, missing
credentials, cooling down), fails over on anything that goes wrong before the first chunk
(retrying retryable faults when asked), may hedge a slow provider with the next one, and never
restarts an answer that was already flowing: a failure after the first chunk raises
`StreamInterruptedError` with the text delivered, or, with `on_interrupt="continue"`, asks the
next provider to continue it. Every provider considered leaves an `Attempt` in the trace, one
log line on logger "providerhub.routing" and an `attempt_finished` hook call.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from . import classify
from .attempt import Attempt
from .errors import AllProvidersFailedError, InvalidRequestError, StreamInterruptedError
from .health import HealthStore, default_health_store
from .hedging import race
from .messages import Messages, validate_messages, validate_model
from .provider import AsyncGeneratorProvider, Provider, _guard
from .stream import ChatStream, Run, close_quietly
from .timeouts import Timeouts

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["CONTINUE_PROMPT", "FallbackChain", "OnInterrupt", "Order"]

log = logging.getLogger("providerhub.routing")

Order = Literal["given", "shuffle", "latency"]
OnInterrupt = Literal["raise", "continue"]

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, "
    "without repeating anything you already wrote."
)
"""The instruction sent, after the partial answer, to the provider asked to continue it."""


class FallbackChain(AsyncGeneratorProvider):
    """A provider made of providers, tried in order until one answers.

    `providers` are names (looked up in `registry`, by default the installed plugins) or
    provider objects, chains included. Metadata derive from the members when the chain is
    built: it works if any member works and supports a model if any member does. `timeouts`
    (seconds or `Timeouts`; None leaves each member its own defaults) apply to each attempt;
    `retries` is how many times a retryable failure is retried on the same provider (jittered
    exponential backoff from `backoff` seconds) before moving on. `hedge_after` starts the next
    provider alongside one that has sent nothing for that long. `health` defaults to the store
    shared by the process. `on_interrupt="continue"` hands a cut answer to the next provider.
    """

    guarded = False

    def __init__(
        self,
        providers: Iterable[str | Provider | type[Any]] | str,
        *,
        registry: Registry | None = None,
        order: Order = "given",
        shuffle: bool = False,
        ignore_working: bool = False,
        retries: int = 0,
        backoff: float = 0.1,
        timeouts: Timeouts | float | None = None,
        hedge_after: float | None = None,
        health: HealthStore | None = None,
        on_interrupt: OnInterrupt = "raise",
        name: str | None = None,
    ) -> None:
        items = providers.split(",") if isinstance(providers, str) else list(providers)
        if not items:
            raise InvalidRequestError("a chain needs at least one provider")
        if order not in ("given", "shuffle", "latency"):
            raise InvalidRequestError(f"order must be given, shuffle or latency, not {order!r}")
        if on_interrupt not in ("raise", "continue"):
            raise InvalidRequestError(
                f"on_interrupt must be raise or continue, not {on_interrupt!r}"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidRequestError(f"retries must be a whole number >= 0, not {retries!r}")
        if hedge_after is not None and not hedge_after > 0:
            raise InvalidRequestError(f"hedge_after must be positive seconds, not {hedge_after!r}")
        if registry is None and any(isinstance(item, str) for item in items):
            from .registry import default_registry

            registry = default_registry()
        self.registry = registry
        self.members: tuple[Provider, ...] = tuple(_resolve(item, registry) for item in items)
        self.order: Order = "shuffle" if shuffle else order
        self.ignore_working = ignore_working
        self.retries = retries
        self.backoff = backoff
        self.timeouts = None if timeouts is None else Timeouts.coerce(timeouts)
        self.hedge_after = hedge_after
        self.health: HealthStore = health if health is not None else default_health_store()
        self.on_interrupt: OnInterrupt = on_interrupt
        self.name = name or f"chain({','.join(member.name for member in self.members)})"
        self._derive_metadata()

    def replace(self, **changes: Any) -> FallbackChain:
        """A copy of this chain with some constructor arguments (`providers` too) changed."""
        arguments: dict[str, Any] = {
            "providers": self.members,
            "registry": self.registry,
            "order": self.order,
            "ignore_working": self.ignore_working,
            "retries": self.retries,
            "backoff": self.backoff,
            "timeouts": self.timeouts,
            "hedge_after": self.hedge_after,
            "health": self.health,
            "on_interrupt": self.on_interrupt,
            "name": self.name,
        }
        unknown = set(changes) - set(arguments)
        if unknown:
            raise TypeError(f"FallbackChain.replace() got unknown arguments: {sorted(unknown)}")
        return FallbackChain(**{**arguments, **changes})

    def _derive_metadata(self) -> None:
        members = self.members

        def any_of(flag: str, default: bool = False) -> bool:
            return any(bool(getattr(member, flag, default)) for member in members)

        self.url = None
        self.working = any_of("working") or self.ignore_working
        self.supports_stream = any_of("supports_stream", True)
        self.supports_message_history = any_of("supports_message_history", True)
        self.supports_system_message = any_of("supports_system_message", True)
        self.supports_gpt_35_turbo = any_of("supports_gpt_35_turbo")
        self.supports_gpt_4 = any_of("supports_gpt_4")
        self.needs_auth = all(bool(getattr(member, "needs_auth", False)) for member in members)
        self.models = tuple(
            dict.fromkeys(model for member in members for model in getattr(member, "models", ()))
        )
        self.default_model = None

    def supports_model(self, model: str) -> bool:
        """Whether any member serves `model`."""
        return any(member.supports_model(model) for member in self.members)

    def missing_credentials(self) -> str | None:
        """Why no member can authenticate, or None when at least one can (or needs nothing)."""
        reasons = []
        for member in self.members:
            if not getattr(member, "needs_auth", False):
                return None
            why = member.missing_credentials()
            if why is None:
                return None
            reasons.append(f"{member.name}: {why}")
        return "; ".join(reasons)

    def stream(self, model: str, messages: Messages, **kwargs: Any) -> ChatStream:
        """Stream the answer; the request is validated here, before any I/O.

        `timeout` (seconds or Timeouts) overrides the chain's timeouts for this call; other
        keyword arguments go to every member.
        """
        model = validate_model(model)
        checked = validate_messages(messages)
        timeout = kwargs.pop("timeout", None)
        timeouts = self.timeouts if timeout is None else Timeouts.coerce(timeout)
        return ChatStream(lambda stream: self._chunks(stream, model, checked, timeouts, kwargs))

    def create_async_generator(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        """The provider interface: the same as `stream()`."""
        return self.stream(model, messages, **kwargs)

    def skip_reason(self, member: Provider, model: str) -> str | None:
        """Why `member` cannot be asked at all (apart from its health), or None."""
        if not self.ignore_working and not member.working:
            return "not working"
        if not member.supports_model(model):
            return f"model {model!r} not supported"
        if getattr(member, "needs_auth", False):
            why = member.missing_credentials()
            if why:
                return f"missing credentials: {why}"
        return None

    def ordered(self) -> list[Provider]:
        """The members in the order a call tries them.

        "latency" sorts by the health store's estimate of time to first chunk; members with no
        estimate yet come first (in the given order), so they get measured.
        """
        members = list(self.members)
        if self.order == "shuffle":
            random.shuffle(members)
        elif self.order == "latency":
            members.sort(key=lambda member: self.health.latency(member.name) or 0.0)
        return members

    async def _chunks(
        self,
        stream: ChatStream,
        model: str,
        messages: list[dict[str, str]],
        timeouts: Timeouts | None,
        kwargs: dict[str, Any],
    ) -> AsyncGenerator[str, None]:
        call = _Call(self, stream, model, messages, timeouts, kwargs)
        parts: list[str] = []
        cause: BaseException | None = None
        while True:
            run = await race(call)
            if run is None:
                if cause is not None:
                    text = "".join(parts)
                    raise StreamInterruptedError(call.interrupted, text, stream.attempts, cause)
                raise AllProvidersFailedError(stream.attempts)
            chunks = run.chunks
            assert chunks is not None
            try:
                parts.append(run.first)
                yield run.first
                async for chunk in chunks:
                    if chunk:
                        parts.append(chunk)
                        yield chunk
            except Exception as exc:
                cause = exc
                call.interrupt(run, exc)
                if self.on_interrupt == "raise":
                    text = "".join(parts)
                    raise StreamInterruptedError(
                        run.attempt.provider, text, stream.attempts, exc
                    ) from exc
                call.continue_after("".join(parts))
                continue
            except BaseException:
                call.served(run, "stopped by the consumer")
                raise
            finally:
                await close_quietly(chunks, run.attempt.provider)
            call.served(run, "")
            return

    def __repr__(self) -> str:
        return f"FallbackChain({self.name!r}, members={[m.name for m in self.members]!r})"


class _Call:
    """The state of one chain call: who is left, the trace, health and hook reporting."""

    def __init__(
        self,
        chain: FallbackChain,
        stream: ChatStream,
        model: str,
        messages: list[dict[str, str]],
        timeouts: Timeouts | None,
        kwargs: dict[str, Any],
    ) -> None:
        self.chain = chain
        self.stream = stream
        self.model = model
        self.messages = messages
        self.timeouts = timeouts
        self.kwargs = kwargs
        self.hedge_after = chain.hedge_after
        self.queue: deque[Provider] = deque(chain.ordered())
        self.continuing = False
        self.interrupted = ""
        """The provider whose answer was cut most recently (for hand-overs)."""

    def next_run(self, hedged: bool) -> Run | None:
        while self.queue:
            member = self.queue.popleft()
            tracked = not isinstance(member, FallbackChain)
            why = self.chain.skip_reason(member, self.model)
            if (
                why is None
                and self.continuing
                and not getattr(member, "supports_message_history", True)
            ):
                why = "cannot continue an answer (no message history)"
            if why is None and tracked:
                why = self.chain.health.admit(member.name)
            if why is not None:
                self._report(Attempt(member.name, "skipped", why, continuation=self.continuing))
                continue
            return self._start(member, 1, hedged, 0.0, tracked)
        return None

    def _start(
        self, member: Provider, number: int, hedged: bool, delay: float, tracked: bool
    ) -> Run:
        attempt = Attempt(
            member.name, "failed", try_number=number, hedged=hedged, continuation=self.continuing
        )
        run = Run(member, attempt, tracked=tracked)
        run.start(self._opener(member), delay)
        return run

    def _opener(self, member: Provider) -> Callable[[], AsyncIterator[str]]:
        model, messages, timeouts, kwargs = self.model, self.messages, self.timeouts, self.kwargs

        def open_stream() -> AsyncIterator[str]:
            options = kwargs if timeouts is None else {**kwargs, "timeout": timeouts}
            chunks = member.create_async_generator(model, messages, **options)
            method = member.create_async_generator
            if isinstance(member, FallbackChain) or getattr(method, "_providerhub_guard", False):
                return chunks
            return _guard(chunks, timeouts or Timeouts(), member.name)

        return open_stream

    def retry(self, run: Run, error: BaseException) -> Run | None:
        number = run.attempt.try_number
        if number > self.chain.retries or not classify.retryable(error):
            return None
        delay = classify.backoff(number + 1, self.chain.backoff)
        return self._start(run.member, number + 1, run.attempt.hedged, delay, run.tracked)

    def failed(self, run: Run, error: BaseException) -> None:
        attempt = run.attempt
        run.stop_clock()
        if isinstance(error, asyncio.CancelledError):
            self.cancelled(run, "cancelled")
            return
        attempt.outcome, attempt.error = "failed", error
        attempt.reason = classify.reason(error, attempt.provider)
        self._health_failure(run, error)
        self._report(attempt)

    def cancelled(self, run: Run, reason: str) -> None:
        run.stop_clock()
        run.attempt.outcome, run.attempt.reason = "cancelled", reason
        if run.tracked:
            self.chain.health.release(run.attempt.provider)
        self._report(run.attempt)

    def won(self, run: Run) -> None:
        attempt = run.attempt
        attempt.outcome = "served"
        if isinstance(run.chunks, ChatStream) and run.chunks.provider:
            attempt.reason = f"via {run.chunks.provider}"
        self.stream.provider = attempt.provider
        self.stream.attempts.append(attempt)
        if run.tracked:
            self.chain.health.success(attempt.provider, attempt.time_to_first_chunk)

    def served(self, run: Run, reason: str) -> None:
        """The winner's stream ended (completely, or because the consumer stopped)."""
        run.stop_clock()
        if reason:
            run.attempt.reason = f"{run.attempt.reason}; {reason}" if run.attempt.reason else reason
        self._log(run.attempt)

    def interrupt(self, run: Run, error: Exception) -> None:
        """The winner failed after its first chunk."""
        attempt = run.attempt
        run.stop_clock()
        attempt.outcome, attempt.error = "interrupted", error
        attempt.reason = classify.reason(error, attempt.provider)
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

    def _health_failure(self, run: Run, error: BaseException) -> None:
        if not run.tracked:
            return
        if classify.unhealthy(error):
            self.chain.health.failure(run.attempt.provider, classify.retry_after(error))
        else:
            self.chain.health.release(run.attempt.provider)

    def _report(self, attempt: Attempt) -> None:
        self.stream.attempts.append(attempt)
        self._log(attempt)

    def _log(self, attempt: Attempt) -> None:
        """One log line and one `attempt_finished` hook call per attempt, once it is final."""
        if log.isEnabledFor(logging.INFO):
            details = [] if attempt.outcome == "skipped" else [f"try {attempt.try_number}"]
            if attempt.time_to_first_chunk is not None:
                details.append(f"first chunk {attempt.time_to_first_chunk * 1000:.0f} ms")
            if attempt.duration is not None:
                details.append(f"total {attempt.duration * 1000:.0f} ms")
            if attempt.hedged:
                details.append("hedged")
            if attempt.continuation:
                details.append("continuation")
            suffix = f" [{', '.join(details)}]" if details else ""
            log.info("%s: %s%s", self.chain.name, attempt, suffix)
        registry = self.chain.registry
        if registry is not None:
            try:
                registry.pm.hook.attempt_finished(attempt=attempt)
            except Exception:
                log.exception("an attempt_finished hook failed")


def _resolve(item: object, registry: Registry | None) -> Provider:
    """A chain member from a name or a provider object."""
    if isinstance(item, str):
        assert registry is not None
        return registry.get(item.strip())
    if not isinstance(item, Provider):
        raise InvalidRequestError(f"{item!r} is not a provider")
    return item
