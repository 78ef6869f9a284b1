"""Which names carry secrets, so every surface redacts the same ones (no aiohttp import)."""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "<redacted>"

_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|passw|credential|session", re.IGNORECASE)
_SECRET_OPTION = re.compile(
    r"(^|_)(api_?key|key|token|secret|password|passwd|credentials?)$", re.IGNORECASE
)


def is_secret_header(name: str) -> bool:
    """Whether an HTTP header of this name may carry a credential (Authorization, X-Api-Key,
    x-goog-api-key, Cookie, X-Auth-Token, Ocp-Apim-Subscription-Key, ...)."""
    return _SECRET_HEADER.search(name) is not None


def is_secret_option(name: str) -> bool:
    """Whether a configuration option of this name holds a secret (api_key, token, ...)."""
    return _SECRET_OPTION.search(name) is not None


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` with the values of secret-bearing ones replaced."""
    return {key: REDACTED if is_secret_header(key) else value for key, value in headers.items()}
