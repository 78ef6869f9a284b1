"""The redaction rule: which names carry secrets, and how a secret is named instead of given.

Every surface (errors, `config check`, provider reprs, plugins) asks this module, so they all
redact the same headers and options. A plugin author uses `is_secret_header` to decide which
header values to hide, `redact_headers` (or `redacted_items`, which keeps repeated names) to
show headers, and `REDACTED` in a repr. Secrets are configured only as the NAME of an
environment variable (`api_key_env`, `headers_env`); `is_env_name` is the one rule for such
names. No aiohttp import: plugins may use it at module level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "REDACTED",
    "is_env_name",
    "is_secret_header",
    "is_secret_option",
    "redact_headers",
    "redacted_items",
]

REDACTED = "<redacted>"
"""What stands in for a secret value wherever one would be shown."""

_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|passw|credential|session", re.IGNORECASE)
_SECRET_OPTION = re.compile(
    r"(^|_)(api_?key|key|token|secret|password|passwd|credentials?)$", re.IGNORECASE
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_secret_header(name: str) -> bool:
    """Whether an HTTP header of this name may carry a credential (Authorization, X-Api-Key,
    x-goog-api-key, Cookie, X-Auth-Token, Ocp-Apim-Subscription-Key, ...)."""
    return _SECRET_HEADER.search(name) is not None


def is_secret_option(name: str) -> bool:
    """Whether a configuration option of this name holds a secret (api_key, token, ...)."""
    return _SECRET_OPTION.search(name) is not None


def is_env_name(value: object) -> bool:
    """Whether `value` can be the name of an environment variable holding a secret
    (`OPENAI_API_KEY`): letters, digits and '_', not starting with a digit."""
    return isinstance(value, str) and _ENV_NAME.match(value) is not None


def redacted_items(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every (name, value) of `headers` in order, repeated names kept (a multidict's
    Set-Cookie lines), with the values of secret-bearing ones replaced."""
    return [(key, REDACTED if is_secret_header(key) else value) for key, value in headers.items()]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` with the values of secret-bearing ones replaced."""
    return dict(redacted_items(headers))
