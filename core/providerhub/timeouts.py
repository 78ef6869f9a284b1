"""The four timeouts of a streaming call: connect, first chunk, idle between chunks, total."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import InvalidRequestError

Phase = Literal["connect", "first_chunk", "idle", "total"]


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
        for phase in ("connect", "first_chunk", "idle", "total"):
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


def _cap(value: float | None, limit: float) -> float:
    return limit if value is None else min(value, limit)
