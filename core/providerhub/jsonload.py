"""JSON text to Python values for the stream parsers: msgspec's decoder when it is installed
(the `providerhub[fast]` extra), the standard library's otherwise, with the same values.

`loads` is what the parsers call (look it up as `jsonload.loads` at call time: it is chosen on
first use, so importing this module costs nothing). msgspec decodes the documents it accepts
to the values `json.loads` gives (big integers stay integers, floats round alike); for anything
it refuses (malformed text, NaN, infinities, lone surrogates, deep nesting) the standard
library decides, so what is accepted, and what an error says, never depends on the decoder.
Both refuse what JSON has no numbers for (`NaN`, `Infinity`, `1e999`, which Python's json
would read as floats a gateway could not send on as JSON).
Tests and benches pick one by setting `loads` to `stdlib_loads` or `fast_loads()`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["fast_loads", "loads", "stdlib_loads"]

Loads = Callable[[str | bytes], Any]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


_strict = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite).decode


def stdlib_loads(text: str | bytes) -> Any:
    """The standard library's decoder, JSON numbers only: the reference every path is held to."""
    return _strict(text if isinstance(text, str) else text.decode(json.detect_encoding(text)))


def fast_loads() -> Loads | None:
    """msgspec's decoder (the standard library's deciding what it refuses), or None without it."""
    try:
        import msgspec
    except ImportError:
        return None
    decode = msgspec.json.Decoder().decode

    def fast(text: str | bytes) -> Any:
        try:
            return decode(text)
        except (ValueError, RecursionError):
            return stdlib_loads(text)

    return fast


def _first(text: str | bytes) -> Any:
    global loads
    if loads is _first:
        loads = fast_loads() or stdlib_loads
    return loads(text)


loads: Loads = _first
"""JSON text (str, or UTF-8 bytes) to its value; ValueError or RecursionError if it is not JSON."""
