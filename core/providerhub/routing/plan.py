"""What a chain call is given: the frozen part of its chain (`Plan`) and the request.

The chain builds both once per call, so the call (`providerhub.routing.call`) never reads
the chain object, and the chain's later changes cannot reach a call under way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..attempt import Attempt
from ..messages import CheckedMessages
from ..provider import Provider
from ..timeouts import Timeouts
from .health import HealthStore
from .options import OnInterrupt

__all__ = ["CONTINUE_PROMPT", "Member", "OnInterrupt", "Plan", "Request"]

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, "
    "without repeating anything you already wrote."
)
"""The instruction sent, after the partial answer, to the provider asked to continue it."""


@dataclass(frozen=True, slots=True)
class Member:
    """A provider a call may ask; `nested` for a chain, which keeps its own health and trace."""

    provider: Provider
    nested: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """What a call needs of its chain, fixed when the call is made."""

    name: str
    members: tuple[Member, ...]
    """In the order this call tries them."""
    health: HealthStore
    ignore_working: bool = False
    retries: int = 0
    backoff: float = 0.1
    hedge_after: float | None = None
    on_interrupt: OnInterrupt = "raise"
    report: Callable[[Attempt], None] | None = None
    """Called with each attempt once it is final (the registry's `attempt_finished` hook)."""
    limit: Callable[[str], int | None] | None = None
    """A provider's cap on requests in flight, by name (the registry's `max_concurrent`)."""


@dataclass(frozen=True, slots=True)
class Request:
    """What a call asks every provider: validated before the call was made."""

    model: str
    messages: CheckedMessages
    params: dict[str, Any]
    """Request parameters and the transport option `proxy`, for every member."""
    timeouts: Timeouts | None
    """Each attempt's timeouts; None leaves each member its own."""
    needs: frozenset[str]
    """The capabilities the request needs (`providerhub.capabilities.required`)."""
    deadline: float | None = None
    """Seconds the whole call may take."""
