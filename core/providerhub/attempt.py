"""One record per provider a chain tried or skipped: the trace users read to learn what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["served", "skipped", "failed", "interrupted", "cancelled"]
"""served: produced the answer; skipped: never called; failed: failed before its first chunk;
interrupted: failed after its first chunk; cancelled: stopped by us (a lost hedge, the consumer)."""


@dataclass(slots=True)
class Attempt:
    """What happened when a chain considered one provider."""

    provider: str
    outcome: Outcome
    reason: str = ""
    error: BaseException | None = None
    time_to_first_chunk: float | None = None
    """Seconds from the request to the first text chunk, when one arrived."""
    duration: float | None = None
    """Seconds from the request to the end of this attempt; None for a skip."""
    try_number: int = 1
    """1 for the first request to this provider in a call, 2 for its first retry, and so on."""
    hedged: bool = False
    """True when this attempt raced another one in parallel (hedging)."""
    continuation: bool = False
    """True when this attempt was asked to continue an answer another provider left unfinished."""

    def __str__(self) -> str:
        text = f"{self.provider}: {self.outcome}"
        return f"{text} ({self.reason})" if self.reason else text
