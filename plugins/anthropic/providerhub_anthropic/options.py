"""The options only an AnthropicProvider has; the rest are `providerhub.endpoint.options`.

Each check raises TypeError or ValueError naming the option, never echoing a value that may be
a key.
"""

from __future__ import annotations

from collections.abc import Mapping

from providerhub.endpoint.options import CONTROL, string

__all__ = ["check_headers", "positive", "version"]


def positive(option: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"option {option!r} must be a positive integer")
    return value


def version(value: object) -> str:
    text = string("anthropic_version", value)
    if CONTROL.search(text):
        raise ValueError("option 'anthropic_version' has a control character")
    return text


def check_headers(literal: Mapping[str, str], from_env: Mapping[str, str]) -> None:
    """Refuse headers other options fill: `anthropic-version` comes from its option only,
    `x-api-key` from `api_key_env` (or `api_key`), or from `headers_env` when neither is given."""
    for option, names in (("headers", literal), ("headers_env", from_env)):
        for name in names:
            if name.lower() == "anthropic-version":
                raise ValueError(
                    f"option {option!r} sets 'anthropic-version'; use option "
                    "'anthropic_version' instead"
                )
    if "x-api-key" in {name.lower() for name in literal}:
        raise ValueError(
            "option 'headers' sets 'x-api-key'; name the key's environment variable with "
            "'api_key_env' instead"
        )
