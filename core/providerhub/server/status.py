"""The HTTP status of a chain failure that happened before anything was sent to the client.

`AllProvidersFailedError` is decided by the providers that were actually asked (skips only say
who was not): every one answered 429 → 429 (with the shortest Retry-After they gave); every one
timed out → 504; every one refused the request itself (HTTP 400/413/422, or an
InvalidRequestError a provider raised before sending it) → 400; any other mix → 502. When
nobody was asked at all: 429 if a skipped provider is cooling down after a 429, else 503. The
message is the error's own, one line per provider.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from ..attempt import Attempt
from ..errors import (
    AllProvidersFailedError,
    CoolingDownError,
    InvalidRequestError,
    StreamInterruptedError,
)
from ..routing import policy
from .wire import RequestError


def all_failed(exc: AllProvidersFailedError) -> RequestError:
    """The response for a chain whose every provider was skipped or failed."""
    failed: set[str] = set()
    skipped: set[str] = set()
    waits: list[float] = []
    for attempt in _leaves(exc.attempts):
        if attempt.outcome == "skipped":
            refusal = attempt.error
            cooling = isinstance(refusal, CoolingDownError) and refusal.rate_limited
            skipped.add("rate_limited" if cooling else "skipped")
            continue
        error = attempt.error
        if error is None:
            failed.add("failed")
            continue
        wait = policy.retry_after(error)
        if wait is not None:
            waits.append(wait)
        failed.add(_kind(error))
    kinds = failed or skipped
    message = str(exc)
    if kinds == {"rate_limited"}:
        headers = {"Retry-After": str(math.ceil(min(waits)))} if waits else {}
        return RequestError(
            429, message, type="rate_limit_error", code="rate_limit_exceeded", headers=headers
        )
    if not failed:
        return RequestError(503, message, type="upstream_error", code="no_provider_available")
    if kinds == {"timeout"}:
        return RequestError(504, message, type="timeout_error", code="upstream_timeout")
    if kinds == {"request"}:
        return RequestError(400, message, code="upstream_rejected_request")
    return RequestError(502, message, type="upstream_error", code="all_providers_failed")


def interrupted(exc: StreamInterruptedError) -> RequestError:
    """A non-streamed answer cut part-way: 502, and none of the partial text."""
    return RequestError(502, str(exc), type="upstream_error", code="stream_interrupted")


def _kind(error: BaseException) -> str:
    status = policy.status(error)
    if status == 429:
        return "rate_limited"
    if status in policy.REQUEST_FAULTS or isinstance(error, InvalidRequestError):
        return "request"
    if isinstance(error, TimeoutError):
        return "timeout"
    return "failed"


def _leaves(attempts: Sequence[Attempt]) -> Iterator[Attempt]:
    """The attempts of real providers: a nested chain's own attempts replace its line."""
    for attempt in attempts:
        if attempt.outcome not in ("failed", "skipped"):
            continue
        if attempt.inner:
            yield from _leaves(attempt.inner)
        else:
            yield attempt
