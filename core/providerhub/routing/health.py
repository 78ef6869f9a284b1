"""Per-provider health shared by every chain of a process: circuit breaker, cooldowns, how many
requests are in flight, latency.

A provider that fails `failure_threshold` times in a row has its circuit opened for a cooldown
(doubling each time it reopens, up to `max_cooldown`); a 429 with Retry-After opens it for the
time asked. When the cooldown is over one caller is let through as a probe (half-open): its
success closes the circuit, its failure reopens it. Success means a completed stream, not just
a first chunk, so a provider that always cuts its answers short still opens its circuit. A
refusal (`CoolingDownError`) keeps the reason line of the last real failure.

Bursts: while a provider's health is unproven (it has not answered, with a first chunk or a
completed stream, since its last failure, or ever), it gets only as many requests at once (its
trials) as failures it would take to open its circuit: `failure_threshold` less the consecutive
failures it has; the rest are refused (`AtCapacityError`, unproven) and a chain moves on to its
next member. So a burst at an always-failing provider sends it exactly as many requests as it
takes to open its circuit, however the trials' failures interleave with the rest of the burst,
not the whole burst; once it answers, it takes any number again. A chain's last resort (no other
member left to ask) waits for the trials instead of being refused (`routing.call.Call._admit`):
refusing it would only fail requests a healthy provider, merely unmeasured at a cold start,
would serve; once it has waited long enough it is admitted anyway
(`admit(..., last_resort=True)`: trials do not bound it).

A caller may also cap the requests in flight to a provider at any time (`admit(provider,
limit)`, a provider's `max_concurrent`): over it, `AtCapacityError` too. A request holds its
place from `admit` until its ticket is reported (`success`, `failure` or `release`), however it
ends. Time to first chunk is tracked as an exponentially weighted moving average for
`order="latency"`.

Chains talk to the store only through `HealthStore`, keyed by provider name (the tickets in
flight included), so a store shared by several gateway processes (`RedisHealthStore`,
`providerhub.routing.redis_health`) can replace the in-memory one; a limit then caps the
requests of all of them together. Only `admit` and `snapshot` are awaited (a shared store
answers them with a round trip); the reports are plain calls a shared store sends on in the
background, so no request waits on them. `snapshot` is the read-only view of one provider
(`ProviderHealth`) for whoever shows it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from ..errors import AtCapacityError, CoolingDownError
from ..redaction import redact

__all__ = [
    "HealthStore",
    "MemoryHealthStore",
    "ProviderHealth",
    "Refusal",
    "Ticket",
    "default_health_store",
]

Circuit: TypeAlias = Literal["closed", "open", "half-open"]

Refusal: TypeAlias = CoolingDownError | AtCapacityError
"""Why `HealthStore.admit` keeps a provider out for now."""


@dataclass(frozen=True, slots=True, eq=False)
class Ticket:
    """Leave to send one request to a provider, from `HealthStore.admit`.

    The request's outcome is reported with it, so a store can tell the half-open probe's outcome
    from that of a request admitted earlier, and free the request's place (compared by identity;
    a shared store may use `token`).
    """

    provider: str
    probe: bool = False
    """True for the one request let through a circuit whose cooldown is over."""
    token: str = ""
    """An identifier a shared store may give its tickets."""


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """What a store knows of one provider now, from `HealthStore.snapshot` (read-only)."""

    provider: str
    circuit: Circuit
    """"open" while cooling down; "half-open" once the cooldown is over (a probe may go, or is
    out); "closed" otherwise."""
    seconds_left: float | None
    """Of the cooldown, while the circuit is open."""
    reason: str
    """Why the circuit is open ("" when closed)."""
    last_failure: str
    """The reason line of the latest failure since the last success ("" if none)."""
    latency: float | None
    """Estimated seconds to the first chunk, or None before any sample."""
    in_flight: int
    """Admitted requests not reported yet (of every process sharing the store)."""
    failures: int
    """Consecutive failures."""

    def record(self) -> dict[str, Any]:
        """JSON-ready, as the gateway's `/v1/providers` and `providers --health` show it
        (seconds and milliseconds to one decimal; remembered secrets redacted)."""
        left, latency = self.seconds_left, self.latency
        return {
            "circuit": self.circuit,
            "seconds_left": None if left is None else round(left, 1),
            "reason": redact(self.reason),
            "last_failure": redact(self.last_failure),
            "latency_ms": None if latency is None else round(latency * 1000, 1),
            "in_flight": self.in_flight,
            "failures": self.failures,
        }


@runtime_checkable
class HealthStore(Protocol):
    """What a chain asks of and tells about each provider, by name.

    Every ticket `admit` gives is reported exactly once: `success`, `failure` or `release`.
    """

    async def admit(
        self, provider: str, limit: int | None = None, last_resort: bool = False
    ) -> Ticket | Refusal:
        """A ticket to go ahead (maybe as the half-open probe), else why the provider is kept out
        for now (returned, not raised). `limit` caps the requests in flight to the provider;
        `last_resort` says no other provider is left to ask (trials do not bound it)."""
        ...

    def first_chunk(self, provider: str, seconds: float) -> None:
        """A request produced its first chunk after `seconds`: update the latency estimate; the
        provider has answered."""
        ...

    def success(self, ticket: Ticket) -> None:
        """The admitted request's stream completed: reset the failures, close the circuit."""
        ...

    def failure(self, ticket: Ticket, retry_after: float | None = None, reason: str = "") -> None:
        """The admitted request failed, for `reason` (its trace line, kept for refusals);
        `retry_after` is the cooldown it asked for (HTTP 429)."""
        ...

    def release(self, ticket: Ticket) -> None:
        """The admitted request ended with neither outcome (cancelled, request fault)."""
        ...

    def latency(self, provider: str) -> float | None:
        """Estimated seconds to the first chunk, or None before any sample (this process's
        latest view: never waits)."""
        ...

    async def snapshot(self, provider: str) -> ProviderHealth:
        """The provider's circuit, cooldown, last failure, latency and requests in flight."""
        ...


@dataclass(slots=True)
class _State:
    failures: int = 0
    opened: int = 0
    """How many times in a row the circuit was opened (for the growing cooldown)."""
    open_until: float | None = None
    why: str = ""
    last: str = ""
    """The reason line of the latest failure."""
    rate_limited: bool = False
    probe: Ticket | None = None
    latency: float | None = None
    answered: bool = False
    """Whether the provider answered since its last failure: its health is proven."""
    in_flight: set[Ticket] = field(default_factory=set)
    trials: set[Ticket] = field(default_factory=set)
    """The tickets in flight admitted while the health was unproven."""


class MemoryHealthStore:
    """The in-process `HealthStore`: a dict of states under a lock (chains may run in threads).

    Only a closed circuit reaching `failure_threshold` or a failed probe opens (or reopens, with
    a doubled cooldown) the circuit; failures of requests admitted before it opened do not
    extend it, and only the probe's own ticket frees the probe slot. `failure_threshold` less
    the consecutive failures is how many trials an unproven provider gets at once while its
    circuit is closed (the half-open probe is a trial of its own).
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 300.0,
        max_retry_after: float = 600.0,
        latency_weight: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if not 0 < latency_weight <= 1:
            raise ValueError("latency_weight must be in (0, 1]")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.max_retry_after = max_retry_after
        self.latency_weight = latency_weight
        self.clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    async def admit(
        self, provider: str, limit: int | None = None, last_resort: bool = False
    ) -> Ticket | Refusal:
        return self.admit_now(provider, limit, last_resort)

    def admit_now(
        self, provider: str, limit: int | None = None, last_resort: bool = False
    ) -> Ticket | Refusal:
        """`admit` without awaiting (this store never waits)."""
        with self._lock:
            state = self._states.setdefault(provider, _State())
            probe = False
            if state.open_until is not None:
                left = state.open_until - self.clock()
                if left > 0 or state.probe is not None:
                    return CoolingDownError(
                        provider,
                        state.why,
                        rate_limited=state.rate_limited,
                        seconds_left=left if left > 0 else None,
                        last_failure=state.last,
                    )
                probe = True
            if limit is not None and len(state.in_flight) >= limit:
                return AtCapacityError(provider, limit)
            bounded = not (probe or last_resort or state.answered)
            if bounded and len(state.trials) + state.failures >= self.failure_threshold:
                return AtCapacityError(provider, len(state.trials), unproven=True)
            ticket = Ticket(provider, probe=probe)
            if probe:
                state.probe = ticket
            state.in_flight.add(ticket)
            if not state.answered:
                state.trials.add(ticket)
            return ticket

    def first_chunk(self, provider: str, seconds: float) -> None:
        with self._lock:
            state = self._states.setdefault(provider, _State())
            if state.latency is None:
                state.latency = seconds
            else:
                state.latency += self.latency_weight * (seconds - state.latency)
            self._answered(state)

    def success(self, ticket: Ticket) -> None:
        with self._lock:
            state, _ = self._free(ticket)
            state.failures = state.opened = 0
            state.open_until, state.why, state.last, state.probe = None, "", "", None
            state.rate_limited = False
            self._answered(state)

    def failure(self, ticket: Ticket, retry_after: float | None = None, reason: str = "") -> None:
        with self._lock:
            state, was_probe = self._free(ticket)
            state.failures += 1
            state.answered = False
            if reason:
                state.last = reason
            now = self.clock()
            if retry_after is not None:
                wait = min(max(retry_after, 0.0), self.max_retry_after)
                state.open_until = max(now + wait, state.open_until or now)
                state.why = f"rate limited, Retry-After {retry_after:g}s"
                state.rate_limited = True
            elif was_probe or (
                state.open_until is None and state.failures >= self.failure_threshold
            ):
                state.opened += 1
                wait = min(self.cooldown * 2 ** (state.opened - 1), self.max_cooldown)
                state.open_until = now + wait
                state.why = f"circuit open after {state.failures} consecutive failures"
                state.rate_limited = False

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            self._free(ticket)

    def latency(self, provider: str) -> float | None:
        with self._lock:
            state = self._states.get(provider)
            return None if state is None else state.latency

    async def snapshot(self, provider: str) -> ProviderHealth:
        return self.snapshot_now(provider)

    def snapshot_now(self, provider: str) -> ProviderHealth:
        """`snapshot` without awaiting."""
        with self._lock:
            state = self._states.get(provider) or _State()
            left = None if state.open_until is None else state.open_until - self.clock()
            return ProviderHealth(
                provider,
                circuit_state(left),
                left if left is not None and left > 0 else None,
                state.why if left is not None else "",
                state.last,
                state.latency,
                len(state.in_flight),
                state.failures,
            )

    def in_flight(self, provider: str) -> int:
        """How many admitted requests to `provider` have not been reported yet."""
        with self._lock:
            state = self._states.get(provider)
            return 0 if state is None else len(state.in_flight)

    def reset(self, provider: str | None = None) -> None:
        """Forget everything (or one provider): for tests and operators."""
        with self._lock:
            if provider is None:
                self._states.clear()
            else:
                self._states.pop(provider, None)

    def _free(self, ticket: Ticket) -> tuple[_State, bool]:
        """Free the ticket's place (a ticket reported twice frees nothing the second time):
        the state of its provider, and whether it was the probe."""
        state = self._states.setdefault(ticket.provider, _State())
        state.in_flight.discard(ticket)
        state.trials.discard(ticket)
        was_probe = state.probe is ticket
        if was_probe:
            state.probe = None
        return state, was_probe

    @staticmethod
    def _answered(state: _State) -> None:
        state.answered = True
        state.trials.clear()


def circuit_state(left: float | None) -> Circuit:
    """The circuit of a provider whose cooldown has `left` seconds (None: not cooling down)."""
    if left is None:
        return "closed"
    return "open" if left > 0 else "half-open"


_default: MemoryHealthStore | None = None
_default_lock = threading.Lock()


def default_health_store() -> MemoryHealthStore:
    """The store shared by every chain of this process that is not given one."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MemoryHealthStore()
        return _default
