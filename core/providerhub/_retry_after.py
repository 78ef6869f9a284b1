"""How long an upstream asks to be left alone: Retry-After and OpenAI's rate-limit resets.

`retry_after` reads `Retry-After` (seconds or an HTTP date), else the longest of
`x-ratelimit-reset-requests` and `x-ratelimit-reset-tokens` ("20ms", "1.5s", "6m0s", "1h2m3s").
Pure parsing, no aiohttp: `providerhub.http` exports it for plugins.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|h|m|s)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or x-ratelimit-reset-* headers.

    A value that is none of these (bad syntax, non-ASCII digits, out of range) counts as absent.
    """
    try:
        value = headers.get("Retry-After")
        if value is not None:
            return _finite(_retry_after_value(value.strip(), now))
        resets = [
            seconds
            for key in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
            if (seconds := _finite(_duration(headers.get(key)))) is not None
        ]
    except (ValueError, OverflowError):
        return None
    return max(resets) if resets else None


def _retry_after_value(value: str, now: float | None) -> float | None:
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _finite(seconds: float | None) -> float | None:
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _duration(value: str | None) -> float | None:
    """Parse OpenAI's reset durations: "20ms", "1.5s", "6m0s", "1h2m3s", or plain seconds."""
    text = (value or "").strip()
    total, position = 0.0, 0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            return None
        number, unit = part.groups()
        position = part.end()
        if unit is None and (part.start() or position < len(text)):
            return None  # a bare number is only valid as the whole value
        total += float(number) * _UNIT_SECONDS[unit]
    return total if text else None
