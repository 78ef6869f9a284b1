"""Per-provider health shared by every chain of a process: circuit breaker, cooldowns, latency.

A provider that fails `failure_threshold` times in a row has its circuit opened for a cooldown
(doubling each time it reopens, up to `max_cooldown`); a 429 with Retry-After opens it for the
time asked. When the cooldown is over one caller is let through as a probe (half-open): its
success closes the circuit, its failure reopens it. Time to first chunk is tracked as an
exponentially weighted moving average for `order="latency"`.

Chains talk to the store only through `HealthStore`, keyed by provider name, so a store shared by
several gateway processes (e.g. Redis) can replace the in-memory one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["HealthStore", "MemoryHealthStore", "default_health_store"]


@runtime_checkable
class HealthStore(Protocol):
    """What a chain asks of and tells about each provider, by name."""

    def admit(self, provider: str) -> str | None:
        """None to go ahead (maybe as the half-open probe), else why the provider is skipped."""
        ...

    def success(self, provider: str, time_to_first_chunk: float | None) -> None:
        """The provider produced text: close its circuit and update its latency estimate."""
        ...

    def failure(self, provider: str, retry_after: float | None = None) -> None:
        """The provider failed; `retry_after` is the cooldown it asked for (HTTP 429)."""
        ...

    def release(self, provider: str) -> None:
        """An admitted request ended with neither outcome (cancelled): free the probe slot."""
        ...

    def latency(self, provider: str) -> float | None:
        """Estimated seconds to the first chunk, or None before any success."""
        ...


@dataclass(slots=True)
class _State:
    failures: int = 0
    opened: int = 0
    """How many times in a row the circuit was opened (for the growing cooldown)."""
    open_until: float | None = None
    why: str = ""
    probing: bool = False
    latency: float | None = None


class MemoryHealthStore:
    """The in-process `HealthStore`: a dict of states under a lock (chains may run in threads)."""

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

    def admit(self, provider: str) -> str | None:
        with self._lock:
            state = self._states.get(provider)
            if state is None or state.open_until is None:
                return None
            left = state.open_until - self.clock()
            if left > 0:
                return f"cooling down, {left:.1f}s left ({state.why})"
            if state.probing:
                return f"cooling down, probe in flight ({state.why})"
            state.probing = True
            return None

    def success(self, provider: str, time_to_first_chunk: float | None) -> None:
        with self._lock:
            state = self._states.setdefault(provider, _State())
            state.failures = state.opened = 0
            state.open_until, state.why, state.probing = None, "", False
            if time_to_first_chunk is not None:
                if state.latency is None:
                    state.latency = time_to_first_chunk
                else:
                    state.latency += self.latency_weight * (time_to_first_chunk - state.latency)

    def failure(self, provider: str, retry_after: float | None = None) -> None:
        with self._lock:
            state = self._states.setdefault(provider, _State())
            state.failures += 1
            was_probe, state.probing = state.probing, False
            now = self.clock()
            if retry_after is not None:
                wait = min(max(retry_after, 0.0), self.max_retry_after)
                state.open_until = now + wait
                state.why = f"rate limited, Retry-After {retry_after:g}s"
            elif was_probe or state.failures >= self.failure_threshold:
                state.opened += 1
                wait = min(self.cooldown * 2 ** (state.opened - 1), self.max_cooldown)
                state.open_until = now + wait
                state.why = f"circuit open after {state.failures} consecutive failures"

    def release(self, provider: str) -> None:
        with self._lock:
            state = self._states.get(provider)
            if state is not None:
                state.probing = False

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
