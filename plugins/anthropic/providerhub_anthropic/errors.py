"""Anthropic's failures as providerhub errors.

An HTTP error status needs nothing here: `providerhub.http` raises `UpstreamHTTPError` with
Anthropic's own message (its `{"type": "error", "error": {"type", "message"}}` body is the shape
`providerhub.chat_completions.error_message` reads), `retry_after` from a 429's Retry-After,
retryable for 429, 529 (overloaded) and other 5xx, `auth_failed` for 401 and 403, not retryable
for other 4xx. What is left is an `error` event inside a stream: `stream_error`. Keys an
upstream echoed, in a body or an event, are scrubbed by `providerhub.endpoint.credentials`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providerhub import UpstreamError
from providerhub.chat_completions import error_text

__all__ = ["REQUEST_FAULTS", "stream_error"]

REQUEST_FAULTS = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "billing_error",
    }
)
"""Error types that say the request or the account is at fault: asking again cannot help.
Any other (overloaded_error, api_error, rate_limit_error, one not known yet) is retryable."""


def stream_error(error: Any, provider: str) -> UpstreamError:
    """The UpstreamError for an `error` event's `error` object, retryable unless the request
    or the account is at fault."""
    kind = error.get("type") if isinstance(error, Mapping) else None
    shown = f"{kind}: " if isinstance(kind, str) else ""
    failure = UpstreamError(provider, f"error in stream: {shown}{error_text(error)}")
    failure.retryable = kind not in REQUEST_FAULTS
    return failure
