"""Checking the options of an HTTP endpoint provider: every mistake named, no secret repeated.

A provider's constructor (and so the config) validates with these, one function per kind of
option; each raises TypeError or ValueError naming the option, never echoing a value that may
be a key. Every plugin using them words the same mistake the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from ..redaction import is_env_name

__all__ = [
    "CONTROL",
    "HEADER_NAME",
    "base_url",
    "check_overlap",
    "env_name",
    "flags",
    "headers",
    "headers_env",
    "key",
    "kind",
    "max_connections",
    "optional_string",
    "string",
    "strings",
    "unusable",
]

HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
"""A valid HTTP header name (an RFC 9110 token)."""
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""Characters an HTTP header value cannot carry (aiohttp refuses them as header injection)."""


def kind(value: object) -> str:
    """The type name a message shows in place of a value that may be a secret."""
    return type(value).__name__


def string(option: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"option {option!r} must be a non-empty string, not {kind(value)}")
    return value


def key(option: str, value: object) -> str:
    """A literal key: a string an HTTP header can carry."""
    text = string(option, value)
    if CONTROL.search(text):
        raise ValueError(unusable(f"option {option!r}"))
    return text


def unusable(holder: str) -> str:
    """Why the key in `holder` ("option 'api_key'", "environment variable X") cannot be sent."""
    return (
        f"{holder} holds a key with a control character (a stray newline?), which an HTTP "
        "header cannot carry; the value is not shown"
    )


def max_connections(value: object) -> int:
    """The `max_connections` option: connections open to the endpoint's host at once."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("option 'max_connections' must be a positive integer")
    return value


def optional_string(option: str, value: object) -> str | None:
    return None if value is None else string(option, value)


def strings(option: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"option {option!r} must be a list of strings, not {kind(value)}")
    for item in value:
        string(f"{option}[]", item)
    return tuple(value)


def flags(values: Mapping[str, object]) -> dict[str, bool]:
    """Boolean options (`working`, `supports_tools`, ...), each true or false."""
    checked = {}
    for flag, value in values.items():
        if not isinstance(value, bool):
            raise TypeError(f"option {flag!r} must be true or false, not {kind(value)}")
        checked[flag] = value
    return checked


def base_url(value: object) -> str:
    """An http(s) URL without credentials, query or fragment; a trailing "/" dropped."""
    url = string("base_url", value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("option 'base_url' must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError(
            "option 'base_url' must not contain credentials; name the key's environment "
            "variable with 'api_key_env' instead"
        )
    if parts.query or parts.fragment:
        raise ValueError("option 'base_url' must not have a query or fragment")
    return url


def env_name(value: object, example: str) -> str:
    """The `api_key_env` option: a variable's name (`example` shows one), never a key."""
    name = string("api_key_env", value)
    if not is_env_name(name):
        raise ValueError(
            "option 'api_key_env' must be the NAME of an environment variable "
            f"(like {example}), not the key itself"
        )
    return name


def headers(value: object) -> dict[str, str]:
    """The `headers` option: literal extra headers an HTTP request can carry."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"option 'headers' must be a table of strings, not {kind(value)}")
    for name, item in value.items():
        if not isinstance(name, str) or not isinstance(item, str):
            raise TypeError(f"option 'headers' must map names to strings; {name!r} does not")
        if not HEADER_NAME.match(name):
            raise ValueError(f"option 'headers': {name!r} is not a valid header name")
        if CONTROL.search(item):
            raise ValueError(
                f"option 'headers': the value of {name!r} has a control character (a stray "
                "newline?), which an HTTP header cannot carry"
            )
    return dict(value)


def headers_env(value: object, example: str) -> dict[str, str]:
    """Header name -> environment variable name (`example` shows one); the message never
    repeats a wrong value."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"option 'headers_env' must be a table of strings, not {kind(value)}")
    seen: set[str] = set()
    for name, item in value.items():
        if not isinstance(name, str) or not isinstance(item, str):
            raise TypeError(f"option 'headers_env' must map names to strings; {name!r} does not")
        if not HEADER_NAME.match(name):
            raise ValueError(f"option 'headers_env': {name!r} is not a valid header name")
        if name.lower() in seen:
            raise ValueError(f"option 'headers_env' names header {name!r} twice")
        seen.add(name.lower())
        if not is_env_name(item):
            raise ValueError(
                f"option 'headers_env': the value for {name!r} must be the NAME of an "
                f"environment variable (like {example}), not the key itself"
            )
    return dict(value)


def check_overlap(
    literal: Mapping[str, str], from_env: Mapping[str, str], key_header: str, prefix: str | None
) -> None:
    """Refuse a header set two ways: which one would win is not obvious from the config.

    `prefix` is None when no key is configured, so `headers_env` may fill `key_header`;
    otherwise it is what goes before the key (`"Bearer "`), named in the message.
    """
    given = {name.lower() for name in literal}
    for name in from_env:
        if name.lower() in given:
            raise ValueError(
                f"option 'headers_env': header {name!r} is also given in headers; keep one"
            )
        if prefix is not None and name.lower() == key_header.lower():
            how = f" ({prefix.strip()})" if prefix.strip() else ""
            raise ValueError(
                f"option 'headers_env' sets {key_header!r}, which the API key already "
                f"fills{how}; keep one"
            )
