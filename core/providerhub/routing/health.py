"""Per-provider health shared by every chain of a process: circuit breaker, cooldowns, latency.

A provider that fails `failure_threshold` times in a row has its circuit opened for a cooldown
(doubling each time it reopens, up to `max_cooldown`); a 429 with Retry-After opens it for the
time asked. When the cooldown is over one caller is let through as a probe (half-open): its
success closes the circuit, its failure reopens it. Success means a completed stream, not just
a first chunk, so a provider that always cuts its answers short still opens its circuit. Time
to first chunk is tracked as an exponentially weighted moving average for `order="latency"`.

Chains talk to the store only through `HealthStore`, keyed by provider name, so a store shared by
several gateway processes (e.g. Redis) can replace the in-memory one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import CoolingDownError

__all__ = ["HealthStore", "MemoryHealthStore", "Ticket", "default_health_store"]


@dataclass(frozen=True, slots=True, eq=False)
class Ticket:
    """Leave to send one request to a provider, from `HealthStore.admit`.

    The request's outcome is reported with it, so a store can tell the half-open probe's outcome
    from that of a request admitted earlier (compared by identity; a shared store may use `token`).
    """

    provider: str
    probe: bool = False
    """True for the one request let through a circuit whose cooldown is over."""
    token: str = ""
    """An identifier a shared store may give its probe tickets."""


@runtime_checkable
class HealthStore(Protocol):
    """What a chain asks of and tells about each provider, by name."""

    def admit(self, provider: str) -> Ticket | CoolingDownError:
        """A ticket to go ahead (maybe as the half-open probe), else why the provider is kept out
        for now (returned, not raised)."""
        ...

    def first_chunk(self, provider: str, seconds: float) -> None:
        """A request produced its first chunk after `seconds`: update the latency estimate."""
        ...

    def success(self, ticket: Ticket) -> None:
        """The admitted request's stream completed: reset the failures, close the circuit."""
        ...

    def failure(self, ticket: Ticket, retry_after: float | None = None) -> None:
        """The admitted request failed; `retry_after` is the cooldown it asked for (HTTP 429)."""
        ...

    def release(self, ticket: Ticket) -> None:
        """The admitted request ended with neither outcome (cancelled, request fault)."""
        ...

    def latency(self, provider: str) -> float | None:
        """Estimated seconds to the first chunk, or None before any sample."""
        ...


@dataclass(slots=True)
class _State:
    failures: int = 0
    opened: int = 0
    """How many times in a row the circuit was opened (for the growing cooldown)."""
    open_until: float | None = None
    why: str = ""
    rate_limited: bool = False
    probe: Ticket | None = None
    latency: float | None = None


class MemoryHealthStore:
    """The in-process `HealthStore`: a dict of states under a lock (chains may run in threads).

    Only a closed circuit reaching `failure_threshold` or a failed probe opens (or reopens, with
    a doubled cooldown) the circuit; failures of requests admitted before it opened do not
    extend it, and only the probe's own ticket frees the probe slot.
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

    def admit(self, provider: str) -> Ticket | CoolingDownError:
        with self._lock:
            state = self._states.get(provider)
            if state is None or state.open_until is None:
                return Ticket(provider)
            left = state.open_until - self.clock()
            if left > 0 or state.probe is not None:
                return CoolingDownError(
                    provider,
                    state.why,
                    rate_limited=state.rate_limited,
                    seconds_left=left if left > 0 else None,
                )
            state.probe = Ticket(provider, probe=True)
            return state.probe

    def first_chunk(self, provider: str, seconds: float) -> None:
        with self._lock:
            state = self._states.setdefault(provider, _State())
            if state.latency is None:
                state.latency = seconds
            else:
                state.latency += self.latency_weight * (seconds - state.latency)

    def success(self, ticket: Ticket) -> None:
        with self._lock:
            state = self._states.setdefault(ticket.provider, _State())
            state.failures = state.opened = 0
            state.open_until, state.why, state.probe = None, "", None
            state.rate_limited = False

    def failure(self, ticket: Ticket, retry_after: float | None = None) -> None:
        with self._lock:
            state = self._states.setdefault(ticket.provider, _State())
            state.failures += 1
            was_probe = state.probe is ticket
            if was_probe:
                state.probe = None
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
            state = self._states.get(ticket.provider)
            if state is not None and state.probe is ticket:
                state.probe = None

    def latency(self, provider: str) -> float | None:
        with self._lock:
            state = self._states.get(provider)
            return None if state is None else state.latency

    def reset(self, provider: str | None = None) -> None:
        """Forget everything (or one provider): for tests and operators."""
        with self._lock:
            if provider is None:
                self._states.clear()
            else:
                self._states.pop(provider, None)


_default: MemoryHealthStore | None = None
_default_lock = threading.Lock()


def default_health_store() -> MemoryHealthStore:
    """The store shared by every chain of this process that is not given one."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MemoryHealthStore()
        return _default
