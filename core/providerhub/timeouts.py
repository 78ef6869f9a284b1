"""The four timeouts of a streaming call (connect, first chunk, idle, total) and the watchdog
that enforces the wall-clock ones."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import get_args

from .errors import InvalidRequestError, Phase

__all__ = ["DEFAULT_TIMEOUTS", "PHASES", "Phase", "Timeouts", "Watchdog"]

PHASES: tuple[Phase, ...] = get_args(Phase)
"""The timeout phases in order, as config tables and `Timeouts` name them."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for each phase of a streaming call; None means no limit for that phase.

    `first_chunk` and `total` are wall-clock deadlines, so an upstream that trickles keep-alive
    bytes without producing text still times out (per-read socket timeouts never fire on it).

    The defaults are chosen so a chain whose first provider hangs fails over within 20 s (the
    first chunk deadline counts from the request, connect included), well inside the 40 s after
    which gpt4free's and LiteLLM's fallbacks had still given no answer; a streaming provider that
    is working sends its first token within seconds. `idle` allows 30 s of silence mid-answer
    and `total` ten minutes for a long answer.
    """

    connect: float | None = 10.0
    first_chunk: float | None = 20.0
    idle: float | None = 30.0
    total: float | None = 600.0

    def __post_init__(self) -> None:
        """Reject a limit that is not a positive number (InvalidRequestError, a ValueError)."""
        for phase in PHASES:
            value = getattr(self, phase)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
            ):
                raise InvalidRequestError(
                    f"timeout {phase} must be a positive number or None, not {value!r}"
                )

    @classmethod
    def coerce(cls, value: Timeouts | float | None) -> Timeouts:
        """Accept a Timeouts, None (the defaults) or one number: a total that also caps the rest."""
        if value is None:
            return cls()
        if isinstance(value, Timeouts):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(
                f"timeout must be a number of seconds or Timeouts, not {value!r}"
            )
        total = float(value)
        if not total > 0:
            raise InvalidRequestError(
                f"timeout must be a positive number of seconds, not {value!r}"
            )
        default = cls()
        return cls(
            connect=_cap(default.connect, total),
            first_chunk=_cap(default.first_chunk, total),
            idle=_cap(default.idle, total),
            total=total,
        )


DEFAULT_TIMEOUTS = Timeouts()
"""The limits of a call that names none; what an implementation's `timeout` defaults to."""


def _cap(value: float | None, limit: float) -> float:
    return limit if value is None else min(value, limit)


class Watchdog:
    """Cancels a wait on a stream that passes its deadline, with one timer per stream.

    `asyncio.timeout` per chunk schedules and cancels a timer for every chunk (~4 µs). This one
    timer is moved only when a deadline comes earlier than it; when it fires early it re-arms,
    so re-arming per chunk costs a clock read. Use `arm(limit)` right before awaiting the next
    chunk and `disarm()` right after, in every outcome; only a wait that is in progress is ever
    cancelled, never the consumer's own code.
    """

    __slots__ = ("_cancelling", "_fired", "_handle", "_limit", "_loop", "_task", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._limit: float | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._waiting = False
        self._fired = False

    def arm(self, limit: float | None) -> None:
        """A wait on the current task starts; it must end by loop time `limit` (None: never)."""
        task = asyncio.current_task()
        self._task = task
        self._cancelling = task.cancelling() if task is not None else 0
        self._limit = limit
        self._waiting = True
        handle = self._handle
        if limit is not None and (handle is None or handle.when() > limit):
            if handle is not None:
                handle.cancel()
            self._handle = self._loop.call_at(limit, self._fire)

    def disarm(self) -> bool:
        """The wait ended; True when the watchdog cut it (and no other cancellation is pending)."""
        self._waiting = False
        if not self._fired:
            return False
        self._fired = False
        assert self._task is not None
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        """Drop the timer (the stream is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        limit = self._limit
        if not self._waiting or limit is None or self._task is None:
            return
        if limit - self._loop.time() > _EARLY:
            self._handle = self._loop.call_at(limit, self._fire)
            return
        self._fired = True
        self._task.cancel()


_EARLY = 0.001
"""A timer firing this much before the deadline counts as on time (the loop's clock resolution)."""
