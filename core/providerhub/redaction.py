"""The redaction rule: which names carry secrets, and how a secret is named instead of given.

Every surface (errors, `config check`, provider reprs, plugins) asks this module, so they all
redact the same headers and options. A plugin author uses `is_secret_header` to decide which
header values to hide, `redact_headers` (or `redacted_items`, which keeps repeated names) to
show headers, and `REDACTED` in a repr. Secrets are configured only as the NAME of an
environment variable (`api_key_env`, `headers_env`); `is_env_name` is the one rule for such
names. `looks_secret` recognises a key by its value, whatever it is called (see its rule).
No aiohttp import: plugins may use it at module level.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping

__all__ = [
    "REDACTED",
    "is_env_name",
    "is_secret_header",
    "is_secret_option",
    "is_secret_value",
    "looks_secret",
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
_KEY_PREFIX = re.compile(
    r"(sk-|sk_live_|sk_test_|xai-|gsk_|AIza|ghp_|gho_|ghs_|github_pat_|glpat-|hf_|xox[abpr]-)"
    r"[A-Za-z0-9_\-]{16,}\Z"
)
_SCHEME = re.compile(r"(Bearer|Basic|Token)\s+\S{8,}\Z", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9_+/=\-]{32,}\Z")
_MIN_BITS = 4.0
"""Shannon entropy per character above which a long token is taken for random."""


def is_secret_header(name: str) -> bool:
    """Whether an HTTP header of this name may carry a credential (Authorization, X-Api-Key,
    x-goog-api-key, Cookie, X-Auth-Token, Ocp-Apim-Subscription-Key, ...)."""
    return _SECRET_HEADER.search(name) is not None


def is_secret_option(name: str) -> bool:
    """Whether a configuration option of this name holds a secret (api_key, token, ...)."""
    return _SECRET_OPTION.search(name) is not None


def looks_secret(value: object) -> bool:
    """Whether a string value looks like a credential, by its shape alone.

    The rule: a known key prefix (sk-, sk-ant-, xai-, gsk_, AIza, ghp_, github_pat_, glpat-,
    hf_, xoxb-, ...) followed by at least 16 key characters; an authorization scheme with a
    credential ("Bearer ...", "Basic ...", "Token ..."); or a token of at least 32 letters,
    digits and `_+/=-` mixing upper case, lower case and digits, with at most one '-' and more
    than 4 bits of entropy per character. URLs, model names (they hold '.', ':' or several
    '-', or are shorter), UUIDs and hex digests (one case) do not match.
    """
    if not isinstance(value, str):
        return False
    text = value.strip()
    if _KEY_PREFIX.match(text) or _SCHEME.match(text):
        return True
    if not _TOKEN.match(text) or text.isupper() or text.islower() or text.isalpha():
        return False
    if text.count("-") > 1 or not any(char.isdigit() for char in text):
        return False
    counts = Counter(text).values()
    bits = -sum(n / len(text) * math.log2(n / len(text)) for n in counts)
    return bits > _MIN_BITS


def is_env_name(value: object) -> bool:
    """Whether `value` can be the name of an environment variable holding a secret
    (`OPENAI_API_KEY`): letters, digits and '_', not starting with a digit."""
    return isinstance(value, str) and _ENV_NAME.match(value) is not None


def is_secret_value(name: str, value: object) -> bool:
    """Whether the header `name: value` carries a secret, by its name or by its value's shape."""
    return is_secret_header(name) or looks_secret(value)


def redacted_items(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every (name, value) of `headers` in order, repeated names kept (a multidict's
    Set-Cookie lines), with the values of secret-bearing or secret-looking ones replaced."""
    return [
        (key, REDACTED if is_secret_value(key, value) else value) for key, value in headers.items()
    ]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` with the values of secret-bearing or secret-looking ones replaced."""
    return dict(redacted_items(headers))
