"""The redaction rule: which names carry secrets, which values are secrets, and how a secret
is named instead of given.

Every surface (errors, `config check`, provider reprs, plugins) asks this module, so they all
redact the same headers and options. A plugin author uses `is_secret_header` to decide which
header values to hide, `redact_headers` (or `redacted_items`, which keeps repeated names) to
show headers, and `REDACTED` in a repr. Secrets are configured only as the NAME of an
environment variable (`api_key_env`, `headers_env`); `is_env_name` is the one rule for such
names. `looks_secret` recognises a key by its value, whatever it is called (see its rule).

The values themselves: whatever reads a configured secret (`endpoint.credentials` the keys and
secret headers it sends, `providerhub serve` the gateway's own key) hands it to `remember`, and
every place where text leaves the process applies `redact` (or `redact_error` to an error):
error texts, the records of the "providerhub" loggers (`LogRedactor`, installed by the first
`remember`), the gateway's error bodies and events, the command line's stderr. An answer's own
text (content, tool-call arguments) is the model's and passes unchanged.
No aiohttp import: plugins may use it at module level.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping

__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "LogRedactor",
    "is_env_name",
    "is_secret_header",
    "is_secret_option",
    "is_secret_value",
    "looks_secret",
    "redact",
    "redact_error",
    "redact_headers",
    "redacted_items",
    "remember",
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
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*\Z")
_TOKEN = re.compile(r"[A-Za-z0-9_+/=\-]{32,}\Z")
_MIN_BITS = 4.0
"""Shannon entropy per character above which a long token is taken for random."""
MIN_SECRET_CHARS = 8
"""Shorter values are not remembered: replacing them everywhere would mangle ordinary words
("demo", "second"), and a value that short is no credential."""

_secrets: frozenset[str] = frozenset()
_known: re.Pattern[str] | None = None
"""Every remembered value, longest first (so a value goes before a part of it); None: none."""
_lock = threading.Lock()


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
    credential ("Bearer ...", "Basic ...", "Token ..."); a JSON Web Token (`eyJ...`, three
    dot-separated base64url parts); or a token of at least 32 letters,
    digits and `_+/=-` mixing upper case, lower case and digits, with at most one '-' and more
    than 4 bits of entropy per character. URLs, model names (they hold '.', ':' or several
    '-', or are shorter), UUIDs and hex digests (one case) do not match.
    """
    if not isinstance(value, str):
        return False
    text = value.strip()
    if _KEY_PREFIX.match(text) or _SCHEME.match(text) or _JWT.match(text):
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
    (`OPENAI_API_KEY`): letters, digits and '_', not starting with a digit, and not shaped like
    a secret itself (`looks_secret`: a `gsk_...` key or a long random token pasted in the
    name's place is valid as a name, and would be shown wherever the name is)."""
    return isinstance(value, str) and _ENV_NAME.match(value) is not None and not looks_secret(value)


def is_secret_value(name: str, value: object) -> bool:
    """Whether the header `name: value` carries a secret, by its name or by its value's shape."""
    return is_secret_header(name) or looks_secret(value)


def redacted_items(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every (name, value) of `headers` in order, repeated names kept (a multidict's
    Set-Cookie lines), with the values of secret-bearing or secret-looking ones replaced and
    remembered secrets redacted from the others (an upstream echoing a key in `X-Echo`)."""
    return [
        (key, REDACTED if is_secret_value(key, value) else redact(value))
        for key, value in headers.items()
    ]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` redacted as `redacted_items` does."""
    return dict(redacted_items(headers))


def remember(*values: str) -> None:
    """Redact these secret values (a key, a header's value) from now on, wherever `redact`
    is applied; values shorter than MIN_SECRET_CHARS are ignored. Cheap when already known,
    so a caller may remember a value at every request."""
    global _secrets, _known
    if all(value in _secrets or len(value) < MIN_SECRET_CHARS for value in values):
        return
    with _lock:
        _secrets = _secrets.union(v for v in values if len(v) >= MIN_SECRET_CHARS)
        ordered = sorted(_secrets, key=len, reverse=True)
        _known = re.compile("|".join(map(re.escape, ordered)))
    LogRedactor.install()


def redact(text: str) -> str:
    """`text` with every remembered secret value replaced by REDACTED."""
    known = _known
    return text if known is None else known.sub(REDACTED, text)


def redact_error(error: BaseException) -> None:
    """Redact the remembered secrets from `error` in place: its args (so its message, str and
    repr) and its string attributes (an HTTP error's `message` and `body`, an excerpt)."""
    if _known is None:
        return
    error.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in error.args)
    for attribute, value in list(vars(error).items()):
        if isinstance(value, str):
            setattr(error, attribute, redact(value))


class LogRedactor(logging.Handler):
    """The first handler of logger "providerhub": it redacts each record in place (message,
    traceback, stack), so every handler after it, up to the root's (pytest's caplog too), sees
    the record redacted, whichever "providerhub.*" logger it came from. It emits nothing
    itself, except that a record no other handler takes goes to `logging.lastResort`, as it
    would without this handler. `install` adds it (once); the first `remember` does.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        self.redact(record)
        last = logging.lastResort
        if (
            last is not None
            and record.levelno >= last.level
            and not self._others(logging.getLogger(record.name))
        ):
            last.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Nothing: `handle` did the work."""

    @staticmethod
    def redact(record: logging.LogRecord) -> None:
        """Redact the remembered secrets from `record` in place."""
        if _known is None:
            return
        message = record.getMessage()
        if (clean := redact(message)) != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            shown = logging.Formatter().formatException(record.exc_info)
            if (clean := redact(shown)) != shown:
                record.exc_text = clean
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)

    def _others(self, logger: logging.Logger | None) -> bool:
        """Whether a handler other than this one sees records of `logger`."""
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False

    @classmethod
    def install(cls) -> None:
        """Put a LogRedactor first among the handlers of logger "providerhub", if none is."""
        logger = logging.getLogger("providerhub")
        with _lock:
            if not any(isinstance(handler, cls) for handler in logger.handlers):
                logger.handlers.insert(0, cls())
