"""`[providers.NAME]`, `[chains.NAME]` and `[models]`: what a request can be routed to.

Providers are checked for literal secrets (refused: only environment variable names), chains
against the options FallbackChain takes (`providerhub.routing.options`) and for cycles and
depth, model aliases for the chains they name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..redaction import is_secret_header, is_secret_option, looks_secret
from ..registry import MAX_CONCURRENT, valid_max_concurrent
from ..routing import options
from ..timeouts import PHASES
from .checks import Checker, is_name, is_number, shown, toml_type
from .spec import ChainSpec, ModelAlias, ProviderSpec

LITERAL_SECRET_WHY = (
    "literal secrets are refused: config files get committed, shared and printed "
    "(`providerhub config check`), and a key in one leaks with it. Put the key in an "
    "environment variable and give its name instead, e.g. "
)
LITERAL_SECRET = LITERAL_SECRET_WHY + 'api_key_env = "OPENAI_API_KEY"'
PROVIDER_KEYS = ("use", "max_concurrent")
"""The keys of a `[providers.NAME]` table that are not options of its provider type."""
CHAIN_KEYS = ("providers", *options.NAMES)
"""The keys of a `[chains.NAME]` table: its members, then the chain options."""
MAX_NESTING = 100
"""How many chains deep chains may nest (a chain of providers only is 1 deep)."""


def provider(c: Checker, name: str, body: dict[str, Any]) -> ProviderSpec:
    """`[providers.NAME]`: a type to instantiate and its options, no literal secret among them."""
    table = f"providers.{name}"
    use = body.get("use")
    if use is None:
        raise c.error(table, "missing key 'use' (the provider type, e.g. \"openai\")", "use")
    c.check(table, "use", use, is_name, 'a provider type name like "openai"')
    for key, value in body.items():
        if is_secret_option(key):
            raise c.error(table, f"{key!r}: {LITERAL_SECRET}", key)
        if looks_secret(value) and not key.endswith("_env"):  # those have their own rule
            raise c.error(table, f"{key!r} looks like a key: {LITERAL_SECRET}", key)
        if key == "headers" and isinstance(value, dict):
            for header, item in value.items():
                if is_secret_header(header) or looks_secret(item):
                    raise c.error(table, literal_secret_header(header), key)
    limit = body.get("max_concurrent")
    if limit is not None:
        c.check(table, "max_concurrent", limit, valid_max_concurrent, MAX_CONCURRENT)
    type_options = {key: value for key, value in body.items() if key not in PROVIDER_KEYS}
    return ProviderSpec(name, use, type_options, limit)


def chain(c: Checker, name: str, body: dict[str, Any]) -> ChainSpec:
    """`[chains.NAME]`: its members (each once) and the FallbackChain options, checked."""
    table = f"chains.{name}"
    c.known_keys(table, body, CHAIN_KEYS)
    if "providers" not in body:
        raise c.error(table, "missing key 'providers' (a list of provider names)")
    members = body["providers"]
    c.check(
        table,
        "providers",
        members,
        lambda v: isinstance(v, list) and bool(v) and all(is_name(m) for m in v),
        "a non-empty list of provider names",
    )
    seen: set[str] = set()
    for member in members:
        if member in seen:
            raise c.error(table, f"'providers' lists {member!r} twice", "providers")
        seen.add(member)
    values = {key: body[key] for key in options.NAMES if key in body}
    if "timeouts" in values:
        timeouts_shape(c, table, values["timeouts"])
    for key, value in values.items():
        found = options.problem(key, value)
        if found is not None:
            wrong = shown(found.key, found.value)
            raise c.error(table, f"{found.key!r} must be {found.expected}, not {wrong}", found.key)
    contradiction = options.contradiction(values)
    if contradiction is not None:
        raise c.error(table, contradiction, "shuffle")
    if "timeouts" in values:
        values["timeouts"] = _floats(values["timeouts"])
    return ChainSpec(name, tuple(members), values)


def timeouts_shape(c: Checker, table: str, value: Any) -> None:
    """`timeouts` is seconds or a table of the phases (its values are checked after)."""
    if isinstance(value, dict):
        c.known_keys(table, value, PHASES)
    elif not is_number(value):
        raise c.error(
            table,
            f"'timeouts' must be {options.TIMEOUTS}, not {toml_type(value)}",
            "timeouts",
        )


def check_cycles(c: Checker, by_lower: Mapping[str, ChainSpec]) -> None:
    """Refuse a chain that contains itself, directly or through other chains, or that
    nests more than MAX_NESTING chains deep (building or calling it would exhaust the
    recursion limit, and nobody means it).

    A depth-first walk that expands each chain once (linear in chains + members): `path`
    (and the set `on_path`) holds the chains being expanded, `tallest` the deepest nesting
    found under each of them so far, `depth` that of each chain done.
    """
    depth: dict[str, int] = {}
    for root in by_lower.values():
        if root.name in depth:
            continue
        path, on_path, tallest = [root.name], {root.name}, [0]
        members = [iter(root.providers)]
        while members:
            member = next(members[-1], None)
            if member is None:
                members.pop()
                name = path.pop()
                on_path.discard(name)
                depth[name] = tallest.pop() + 1
                if depth[name] > MAX_NESTING:
                    raise c.error(
                        f"chains.{name}",
                        f"chains nest {depth[name]} deep here, more than {MAX_NESTING}",
                        "providers",
                    )
                if tallest:
                    tallest[-1] = max(tallest[-1], depth[name])
                continue
            inner = by_lower.get(member.lower())
            if inner is None:
                continue
            if inner.name in depth:
                tallest[-1] = max(tallest[-1], depth[inner.name])
                continue
            if inner.name in on_path:
                loop = [*path[path.index(inner.name) :], inner.name]
                raise c.error(
                    f"chains.{loop[0]}",
                    f"chain refers to itself: {' -> '.join(loop)}",
                    "providers",
                )
            path.append(inner.name)
            on_path.add(inner.name)
            tallest.append(0)
            members.append(iter(inner.providers))


def models(
    c: Checker, body: dict[str, Any], by_lower: Mapping[str, ChainSpec]
) -> dict[str, ModelAlias]:
    """`[models]`: each alias to a defined chain, optionally with the model to ask it for."""
    aliases = {}
    for alias, value in body.items():
        if isinstance(value, dict):
            c.known_keys("models", value, ("chain", "model"))
            if "chain" not in value:
                raise c.error(
                    "models",
                    f"{alias!r} is missing key 'chain' (the chain it routes to)",
                    alias,
                )
            chain, model = value["chain"], value.get("model", "")
            c.check("models", f"{alias}.model", model, lambda v: isinstance(v, str), "a string")
        else:
            chain, model = value, ""
        c.check(
            "models",
            alias,
            chain,
            is_name,
            'a chain name, or { chain = "...", model = "..." }',
        )
        aliases[alias] = ModelAlias(
            alias, c.chain_name("models", alias, str(chain), by_lower), model
        )
    return aliases


def literal_secret_header(header: str) -> str:
    """Why a literal secret header (by its name or its value's shape) is refused, and the
    `headers_env` line to use instead (`api_key_env` for Authorization, which it fills as
    "Bearer <key>")."""
    if header.lower() == "authorization":
        return f"header {header!r}: {LITERAL_SECRET}"
    variable = re.sub(r"[^A-Za-z0-9]+", "_", header).strip("_").upper()
    if not variable[:1].isalpha():
        variable = "API_KEY" + (variable and "_" + variable)
    return (
        f"header {header!r}: {LITERAL_SECRET_WHY}"
        f'headers_env = {{ {json.dumps(header)} = "{variable}" }}'
    )


def _floats(timeouts: float | dict[str, float]) -> float | dict[str, float]:
    """A checked `timeouts` value with its seconds as floats."""
    if isinstance(timeouts, dict):
        return {phase: float(seconds) for phase, seconds in timeouts.items()}
    return float(timeouts)
