"""Anthropic's failures as providerhub errors.

An HTTP error status needs nothing here: `providerhub.http` raises `UpstreamHTTPError` with
Anthropic's own message (its `{"type": "error", "error": {"type", "message"}}` body is the shape
`providerhub.chat_completions.error_message` reads), `retry_after` from a 429's Retry-After,
retryable for 429, 529 (overloaded) and other 5xx, `auth_failed` for 401 and 403, not retryable
for other 4xx. What is left: an `error` event inside a stream (`stream_error`), and keys an
upstream echoed in an error body (`scrub`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from providerhub import UpstreamError
from providerhub.chat_completions import error_text
from providerhub.redaction import REDACTED, is_secret_header

if TYPE_CHECKING:
    from providerhub.http import UpstreamHTTPError

__all__ = ["REQUEST_FAULTS", "scrub", "stream_error"]

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


def scrub(error: UpstreamHTTPError, secrets: Iterable[str], hidden: Iterable[str]) -> None:
    """Remove keys from `error`, should the upstream have echoed one in its error body.

    Headers named in `hidden` (those `headers_env` fills) are redacted from the recorded request
    too, even when their names do not look secret to the rule providerhub.http applies.
    """
    for secret in secrets:
        error.message = error.message.replace(secret, REDACTED)
        error.body = error.body.replace(secret, REDACTED)
    names = {name.lower() for name in hidden if not is_secret_header(name)}
    if names:
        from multidict import CIMultiDict, CIMultiDictProxy

        info = error.request_info
        shown = CIMultiDict(
            (key, REDACTED if key.lower() in names else value)
            for key, value in info.headers.items()
        )
        error.request_info = info._replace(headers=CIMultiDictProxy(shown))
