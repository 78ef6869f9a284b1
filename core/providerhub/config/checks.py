"""The vocabulary every table's parser shares: errors that name the file, table and key at
fault, the checks of a value against what it must be, and how a wrong value is shown (never a
secret-looking one)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import suggest
from ..errors import ConfigError
from ..redaction import is_secret_option, looks_secret
from .spec import ChainSpec

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
"""A provider, chain or provider type name."""


class Checker:
    """Checks of one document's values; each failure a ConfigError naming where it is."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def error(self, table: str | None, message: str, key: str | None = None) -> ConfigError:
        """The error to raise: `message` at `table` and `key` of this document."""
        return ConfigError(message, path=self.path or "<string>", table=table, key=key)

    def table(self, body: Mapping[str, Any], key: str, parent: str | None) -> dict[str, Any]:
        """`body[key]`, which must be a table (an empty one when absent)."""
        value = body.get(key, {})
        if not isinstance(value, dict):
            raise self.error(parent, f"{key!r} must be a table, not {toml_type(value)}", key)
        return value

    def tables(self, document: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
        """The named sub-tables of `[kind]`, e.g. every `[providers.NAME]`."""
        found = self.table(document, kind, None)
        for name, body in found.items():
            if not NAME.match(name):
                raise self.error(
                    f"{kind}.{name}",
                    "names use letters, digits, '_', '.', '-' and start with a letter or digit",
                )
            if not isinstance(body, dict):
                raise self.error(kind, f"{name!r} must be a table, not {toml_type(body)}", key=name)
        return found

    def known_keys(
        self, table: str | None, body: Mapping[str, Any], known: tuple[str, ...]
    ) -> None:
        """Refuse a key not in `known`, suggesting the one meant."""
        for key in body:
            if key not in known:
                hint = suggest.best(key, known) or f"; expected one of {', '.join(known)}"
                raise self.error(table, f"unknown key {key!r}{hint}", key)

    def chain_name(self, table: str, key: str, name: str, by_lower: Mapping[str, ChainSpec]) -> str:
        """The defined chain `name` refers to (any case), as spelled where it is defined."""
        known = by_lower.get(name.lower())
        if known is not None:
            return known.name
        if is_secret_option(key):
            raise self.error(table, f"{key!r} names a chain that is not defined", key)
        hint = suggest.best(name, [spec.name for spec in by_lower.values()])
        raise self.error(table, f"{key!r} names chain {name!r}, which is not defined{hint}", key)

    def check(
        self, table: str, key: str, value: Any, ok: Callable[[Any], bool], expected: str
    ) -> None:
        """Refuse `value` unless `ok(value)`, saying what it must be."""
        if not ok(value):
            raise self.error(table, f"{key!r} must be {expected}, not {shown(key, value)}", key)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_positive(value: Any) -> bool:
    return is_number(value) and 0 < value < float("inf")


def is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(NAME.match(value))


def shown(key: str, value: Any) -> str:
    """How a message shows a wrong value: numbers and strings of up to 40 characters as
    themselves, so the problem is plain; anything longer, and any value of a secret-looking
    key or secret-looking value, only by its TOML kind."""
    if is_secret_option(key.rpartition(".")[2]) or looks_secret(value):
        return toml_type(value)
    if is_number(value) or (isinstance(value, str) and len(value) <= 40):
        return repr(value)
    return toml_type(value)


def toml_type(value: Any) -> str:
    """The TOML kind of a value, for messages that must not repeat it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"
