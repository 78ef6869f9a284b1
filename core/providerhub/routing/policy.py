"""How a chain judges a provider: whether to ask it at all, and how to read its failure (the
reason line, whether to retry, whether it hurts health).

Works from the provider's flags and the error taxonomy by attribute (`retryable`, `status`,
`retry_after`), so it never needs to import aiohttp.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from .. import capabilities
from ..errors import (
    AtCapacityError,
    CoolingDownError,
    ProviderHubError,
    SpuriousCancellation,
    UpstreamError,
)

REQUEST_FAULTS = frozenset({400, 413, 422})
"""HTTP statuses that blame the request, not the provider: they do not open its circuit."""


SkipKind = Literal["not working", "model", "capability", "credentials", "history"]


@dataclass(frozen=True, slots=True)
class Skip:
    """Why a provider cannot be asked at all: the `kind` (for callers that refuse with a typed
    error, like `providerhub chat -p`) and the trace's words for it (`reason`)."""

    kind: SkipKind
    reason: str
    detail: str = ""
    """The provider's own words for missing credentials ("environment variable X is not set")."""


def skip(
    member: Any,
    model: str,
    needs: frozenset[str] = frozenset(),
    *,
    ignore_working: bool = False,
    continuing: bool = False,
) -> Skip | None:
    """Why `member` cannot be asked at all (apart from its health), or None.

    `needs` are the capabilities the request uses (`providerhub.capabilities.required`);
    `continuing` says the request asks to continue a cut answer, which needs message history.
    """
    if not ignore_working and not member.working:
        return Skip("not working", "not working")
    if not member.supports_model(model):
        return Skip("model", f"model {model!r} not supported")
    lacking = capabilities.missing(member, needs)
    if lacking:
        return Skip("capability", f"does not support {', '.join(lacking)}")
    if getattr(member, "needs_auth", False):
        why = member.missing_credentials()
        if why:
            return Skip("credentials", f"missing credentials: {why}", why)
    if continuing and not getattr(member, "supports_message_history", True):
        return Skip("history", "cannot continue an answer (no message history)")
    return None


def refused(refusal: CoolingDownError | AtCapacityError) -> str:
    """The skip kind of a health store's refusal (`Attempt.skipped_for`)."""
    if isinstance(refusal, CoolingDownError):
        return "rate limited" if refusal.rate_limited else "cooling down"
    return "unproven" if refusal.unproven else "at capacity"


def reason(exc: BaseException, provider: str) -> str:
    """One line saying what went wrong, without repeating the provider's name."""
    text = " ".join(str(exc).split())
    prefix = f"{provider}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    if isinstance(exc, ProviderHubError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def status(exc: BaseException) -> int | None:
    """The HTTP status of an UpstreamHTTPError, else None."""
    value = getattr(exc, "status", None) if isinstance(exc, UpstreamError) else None
    return value if isinstance(value, int) else None


def retry_after(exc: BaseException) -> float | None:
    """The cooldown an upstream asked for with a 429, else None."""
    if status(exc) != 429:
        return None
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def retryable(exc: BaseException) -> bool:
    """Whether the same provider may succeed if asked again soon.

    Upstream faults say so themselves (5xx, 408, 429, timeouts, connection errors yes; auth and
    other 4xx no). A 429 that names its wait is not retried here: the provider cools down. A TLS
    handshake failure (bad certificate, wrong protocol) fails the same way every time. Anything
    else (a plugin bug, missing credentials) is not retried.
    """
    return (
        isinstance(exc, UpstreamError)
        and exc.retryable
        and retry_after(exc) is None
        and not _tls(exc)
    )


def unhealthy(exc: BaseException) -> bool:
    """Whether the failure counts toward opening the provider's circuit.

    Only upstream faults do, except statuses that blame the request; a ProviderHubError that is
    not an UpstreamError (a bad argument, missing credentials) says nothing about the provider's
    health. Provider bugs do count: a SpuriousCancellation and any exception outside the
    taxonomy.
    """
    if isinstance(exc, ProviderHubError) and not isinstance(
        exc, UpstreamError | SpuriousCancellation
    ):
        return False
    return status(exc) not in REQUEST_FAULTS


def backoff(try_number: int, base: float, cap: float = 5.0) -> float:
    """Seconds to wait before retry `try_number` (2, 3, ...): exponential with equal jitter."""
    ceiling = min(cap, base * 2 ** max(try_number - 2, 0))
    half: float = ceiling / 2
    return half + random.uniform(0, half)


def _tls(exc: BaseException) -> bool:
    """Whether an error was caused by a failed TLS handshake or certificate check."""
    cause = exc.__cause__
    while cause is not None:
        if any(
            "SSL" in kind.__name__ or "Certificate" in kind.__name__ for kind in type(cause).__mro__
        ):
            return True
        cause = cause.__cause__
    return False
