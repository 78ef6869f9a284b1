"""The HTTP status of a chain failure that happened before anything was sent to the client,
and the retry hints that go with it.

`AllProvidersFailedError` is decided by the providers that were actually asked (skips only say
who was not): every one answered 429 → 429; every one timed out → 504; every one refused the
request itself (HTTP 400/413/422, or an InvalidRequestError a provider raised before sending
it) → 400; any other mix → 502. When nobody was asked at all: 429 if every skipped provider is
cooling down after a 429, else 503. The message is the error's own, one line per provider.

Hints for clients that retry (the official openai SDK retries 408, 409, 429 and 5xx): a 429 or
503 carries `Retry-After` (whole seconds, rounded up, at least 1) when the gateway knows when
the first provider may be asked again: the shortest wait a 429 asked for or a cooldown has left
(not when one of them may heal sooner at an unknown time: at capacity, its probe in flight, a
429 naming no wait). `x-should-retry: false` goes with any answer no provider can heal by being
asked again: every one skipped for good (not working, model, capability, credentials) or failed
for good (a request fault, a non-retryable upstream status such as 401, missing credentials,
configuration). `x-should-retry: true` is never sent: the answers that may heal are 429 and 5xx,
which such clients retry anyway.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

from ..attempt import Attempt
from ..errors import (
    AllProvidersFailedError,
    AtCapacityError,
    CoolingDownError,
    DeadlinePassed,
    InvalidRequestError,
    ProviderHubError,
    SpuriousCancellation,
    StreamInterruptedError,
    UpstreamError,
)
from ..routing import policy
from .wire import RequestError

Kind = Literal["rate_limited", "unavailable", "skipped", "timeout", "request", "failed"]

ANSWERS: Mapping[Kind, tuple[int, str, str]] = {
    "rate_limited": (429, "rate_limit_error", "rate_limit_exceeded"),
    "unavailable": (503, "upstream_error", "no_provider_available"),
    "timeout": (504, "timeout_error", "upstream_timeout"),
    "request": (400, "invalid_request_error", "upstream_rejected_request"),
    "failed": (502, "upstream_error", "all_providers_failed"),
}
"""Status, error type and code of each answer."""
HINTED = frozenset({429, 503})
"""The statuses that carry Retry-After."""


def all_failed(exc: AllProvidersFailedError) -> RequestError:
    """The response for a chain whose every provider was skipped or failed."""
    failed: set[Kind] = set()
    skipped: set[Kind] = set()
    waits: list[float | None] = []
    for attempt in _leaves(exc.attempts):
        error = attempt.error
        if attempt.outcome == "skipped":
            kind, wait = _skip(error)
            skipped.add(kind)
        else:
            kind, wait = _failure(error)
            failed.add(kind)
        if _heals(kind, error):
            waits.append(wait)
    kinds = failed or skipped
    answer: Kind
    if kinds == {"rate_limited"}:
        answer = "rate_limited"
    elif not failed:
        answer = "unavailable"
    elif len(kinds) == 1:
        answer = next(iter(kinds))
    else:
        answer = "failed"
    status, error_type, code = ANSWERS[answer]
    headers = {}
    if status in HINTED and waits and None not in waits:
        shortest = min(wait for wait in waits if wait is not None)
        headers["Retry-After"] = str(max(1, math.ceil(shortest)))
    return RequestError(
        status,
        str(exc),
        type=error_type,
        code=code,
        headers=headers,
        should_retry=None if waits else False,
    )


def interrupted(exc: StreamInterruptedError) -> RequestError:
    """A non-streamed answer cut part-way: 502, and none of the partial text."""
    return RequestError(502, str(exc), type="upstream_error", code="stream_interrupted")


def _skip(refusal: BaseException | None) -> tuple[Kind, float | None]:
    """What a skip says, and in how many seconds the provider may be asked (None: unknown)."""
    if isinstance(refusal, CoolingDownError):
        return ("rate_limited" if refusal.rate_limited else "unavailable"), refusal.seconds_left
    if refusal is None:
        return "skipped", None
    return "unavailable", None


def _failure(error: BaseException | None) -> tuple[Kind, float | None]:
    """What a failure says, and the wait a 429 asked for."""
    if error is None:
        return "failed", None
    status = policy.status(error)
    if status == 429:
        return "rate_limited", policy.retry_after(error)
    if status in policy.REQUEST_FAULTS or isinstance(error, InvalidRequestError):
        return "request", None
    if isinstance(error, TimeoutError):
        return "timeout", None
    return "failed", None


def _heals(kind: Kind, error: BaseException | None) -> bool:
    """Whether asking again may go otherwise: a skip for now (cooling down, at capacity, the
    deadline), an upstream fault its error calls retryable, a fault outside the taxonomy (a
    plugin's bug may be transient); never a request fault or another error of providerhub's."""
    if kind in ("skipped", "request"):
        return False
    if isinstance(error, CoolingDownError | AtCapacityError | DeadlinePassed):
        return True
    if isinstance(error, UpstreamError):
        return error.retryable
    return not isinstance(error, ProviderHubError) or isinstance(error, SpuriousCancellation)


def _leaves(attempts: Sequence[Attempt]) -> Iterator[Attempt]:
    """The attempts of real providers: a nested chain's own attempts replace its line."""
    for attempt in attempts:
        if attempt.outcome not in ("failed", "skipped"):
            continue
        if attempt.inner:
            yield from _leaves(attempt.inner)
        else:
            yield attempt
