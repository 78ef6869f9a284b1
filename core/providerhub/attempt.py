"""One record per provider a chain tried or skipped: the trace users read to learn what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """Seconds from the request to the first event (text, a tool call, ...), when one arrived."""
    duration: float | None = None
    """Seconds from the request to the end of this attempt; None for a skip."""
    try_number: int = 1
    """1 for the first request to this provider in a call, 2 for its first retry, and so on."""
    hedged: bool = False
    """True when this attempt raced another one in parallel (hedging)."""
    continuation: bool = False
    """True when this attempt was asked to continue an answer another provider left unfinished."""
    inner: list[Attempt] = field(default_factory=list)
    """When the provider is itself a chain: the attempts it made (what happened inside it)."""
    skipped_for: str = ""
    """A skip's kind, for counting: a `routing.policy.Skip` kind ("not working", "model",
    "capability", "credentials", "history"), the health store's refusal ("cooling down",
    "rate limited", "at capacity", "unproven", `routing.policy.refused`) or "deadline"."""

    def __str__(self) -> str:
        text = f"{self.provider}: {self.outcome}"
        return f"{text} ({self.reason})" if self.reason else text

    def details(self) -> str:
        """Timings and flags, e.g. " [first chunk 12 ms, total 40 ms, try 2]", or ""."""
        parts = []
        if self.outcome != "skipped":
            first, total = self.time_to_first_chunk, self.duration
            parts.append("first chunk " + ("-" if first is None else _ms(first)))
            parts.append("total " + ("-" if total is None else _ms(total)))
            if self.try_number > 1:
                parts.append(f"try {self.try_number}")
        if self.hedged:
            parts.append("hedged")
        if self.continuation:
            parts.append("continuation")
        return f" [{', '.join(parts)}]" if parts else ""

    def summary(self) -> str:
        """The line an AllProvidersFailedError shows: "name: reason" (with "try N" on retries)."""
        reason = self.reason or (str(self.error) if self.error else "")
        if self.outcome == "skipped":
            return f"{self.provider}: skipped ({reason})"
        text = f"{self.provider}: {reason}" if reason else f"{self.provider}: {self.outcome}"
        return f"{text} (try {self.try_number})" if self.try_number > 1 else text


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
