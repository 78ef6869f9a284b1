"""Checking the options of an AnthropicProvider: every mistake named, no secret repeated.

The constructor's (and so the config's) validation rules, one function per kind of option;
each raises TypeError or ValueError naming the option, never echoing a value that may be a key.
They follow the providerhub-openai plugin's rules word for word, so both plugins' options read
the same in a config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from providerhub.redaction import is_env_name

HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""Characters an HTTP header value cannot carry (aiohttp refuses them as header injection)."""


def kind(value: object) -> str:
    return type(value).__name__


def string(option: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"option {option!r} must be a non-empty string, not {kind(value)}")
    return value


def key(option: str, value: object) -> str:
    text = string(option, value)
    if CONTROL.search(text):
        raise ValueError(unusable(f"option {option!r}"))
    return text


def unusable(holder: str) -> str:
    return (
        f"{holder} holds a key with a control character (a stray newline?), which an HTTP "
        "header cannot carry; the value is not shown"
    )


def optional_string(option: str, value: object) -> str | None:
    return None if value is None else string(option, value)


def strings(option: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"option {option!r} must be a list of strings, not {kind(value)}")
    for item in value:
        string(f"{option}[]", item)
    return tuple(value)


def positive(option: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"option {option!r} must be a positive integer")
    return value


def version(value: object) -> str:
    text = string("anthropic_version", value)
    if CONTROL.search(text):
        raise ValueError("option 'anthropic_version' has a control character")
    return text


def base_url(value: object) -> str:
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


def env_name(value: object) -> str:
    name = string("api_key_env", value)
    if not is_env_name(name):
        raise ValueError(
            "option 'api_key_env' must be the NAME of an environment variable "
            "(like ANTHROPIC_API_KEY), not the key itself"
        )
    return name


def headers_env(value: object) -> dict[str, str]:
    """Header name -> environment variable name; the message never repeats a wrong value."""
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
                "environment variable (like ANTHROPIC_BETA), not the key itself"
            )
    return dict(value)


def headers(value: object) -> dict[str, str]:
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


def check_overlap(literal: Mapping[str, str], from_env: Mapping[str, str], keyed: bool) -> None:
    """Refuse a header set two ways: which one would win is not obvious from the config.

    `anthropic-version` comes from its option only; `x-api-key` from `api_key_env` (or
    `api_key`), or from `headers_env` when neither is given.
    """
    given = {name.lower() for name in literal}
    for option, names in (("headers", literal), ("headers_env", from_env)):
        for name in names:
            if name.lower() == "anthropic-version":
                raise ValueError(
                    f"option {option!r} sets 'anthropic-version'; use option "
                    "'anthropic_version' instead"
                )
    if "x-api-key" in given:
        raise ValueError(
            "option 'headers' sets 'x-api-key'; name the key's environment variable with "
            "'api_key_env' instead"
        )
    for name in from_env:
        if name.lower() in given:
            raise ValueError(
                f"option 'headers_env': header {name!r} is also given in headers; keep one"
            )
        if keyed and name.lower() == "x-api-key":
            raise ValueError(
                "option 'headers_env' sets 'x-api-key', which the API key already fills; keep one"
            )
