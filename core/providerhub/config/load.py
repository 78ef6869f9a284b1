"""Finding, reading and validating providerhub.toml (structure only; types need a registry).

Search order: an explicit path (`--config`), then $PROVIDERHUB_CONFIG, then
$XDG_CONFIG_HOME/providerhub/providerhub.toml (XDG_CONFIG_HOME defaults to ~/.config).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import suggest
from ..errors import ConfigError
from ..redaction import is_env_name, is_secret_header, is_secret_option, looks_secret
from ..registry import MAX_CONCURRENT, valid_max_concurrent
from ..routing import options
from ..timeouts import PHASES
from .schema import Config
from .spec import (
    HEALTH_STORES,
    ChainSpec,
    HealthSettings,
    ModelAlias,
    ProviderSpec,
    ServerSettings,
    redis_credentials,
    redis_url_problem,
)

CONFIG_ENV = "PROVIDERHUB_CONFIG"
FILENAME = "providerhub.toml"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
LITERAL_SECRET_WHY = (
    "literal secrets are refused: config files get committed, shared and printed "
    "(`providerhub config check`), and a key in one leaks with it. Put the key in an "
    "environment variable and give its name instead, e.g. "
)
LITERAL_SECRET = LITERAL_SECRET_WHY + 'api_key_env = "OPENAI_API_KEY"'
PROVIDER_KEYS = ("use", "max_concurrent")
HEALTH_KEYS = (
    "store",
    "url",
    "url_env",
    "prefix",
    "failure_threshold",
    "cooldown",
    "max_cooldown",
    "max_retry_after",
    "timeout",
)
"""The keys of a `[providers.NAME]` table that are not options of its provider type."""
CHAIN_KEYS = ("providers", *options.NAMES)
"""The keys of a `[chains.NAME]` table: its members, then the chain options."""
SERVER_LIMITS = ("request_timeout", "max_concurrent_requests", "shutdown_grace")
SERVER_KEYS = ("host", "port", "chain", "api_key_env", *SERVER_LIMITS, "cors_origins", "metrics")
"""The keys of `[server]`."""
ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?\Z")
"""A browser origin: scheme, host and an optional port, nothing after them."""
MAX_NESTING = 100
"""How many chains deep chains may nest (a chain of providers only is 1 deep)."""


def find_config(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to use, or None when none is given and the default does not exist.

    A file named explicitly or by $PROVIDERHUB_CONFIG must exist (ConfigError otherwise).
    """
    env = os.environ if environ is None else environ
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError("config file not found", path=path)
        return path
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found (named by ${CONFIG_ENV})", path=path)
        return path
    path = default_path(env)
    return path if path.is_file() else None


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config is looked for when neither --config nor $PROVIDERHUB_CONFIG names one."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "providerhub" / FILENAME


def load_config(
    explicit: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config | None:
    """Find (see `find_config`), read and validate the config; None when there is none."""
    path = find_config(explicit, environ)
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    return parse_config(text, path)


def parse_config(text: str, path: str | os.PathLike[str] | None = None) -> Config:
    """Validate a providerhub.toml document; ConfigError names the file, table and key at fault."""
    import tomllib

    where = None if path is None else Path(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=where) from None
    except RecursionError:
        raise ConfigError("invalid TOML: arrays or tables nested too deeply", path=where) from None
    return _Parser(where).config(document)


class _Parser:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def error(self, table: str | None, message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.path or "<string>", table=table, key=key)

    def config(self, document: dict[str, Any]) -> Config:
        self.known_keys(None, document, ("providers", "chains", "models", "server", "health"))
        providers = {
            name: self.provider(name, body)
            for name, body in self.tables(document, "providers").items()
        }
        chains = {
            name: self.chain(name, body) for name, body in self.tables(document, "chains").items()
        }
        provider_names = {known.lower() for known in providers}
        for name in chains:
            if name.lower() in provider_names:
                raise self.error(
                    f"chains.{name}", f"{name!r} is also the name of a provider; rename one"
                )
        by_lower = {name.lower(): spec for name, spec in chains.items()}
        self.check_cycles(by_lower)
        models = self.models(self.table(document, "models", None), by_lower)
        server = self.server(self.table(document, "server", None), by_lower)
        health = self.health(self.table(document, "health", None))
        return Config(self.path, providers, chains, models, server, health)

    def table(self, body: Mapping[str, Any], key: str, parent: str | None) -> dict[str, Any]:
        value = body.get(key, {})
        if not isinstance(value, dict):
            raise self.error(parent, f"{key!r} must be a table, not {_toml_type(value)}", key)
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
                raise self.error(
                    kind, f"{name!r} must be a table, not {_toml_type(body)}", key=name
                )
        return found

    def known_keys(
        self, table: str | None, body: Mapping[str, Any], known: tuple[str, ...]
    ) -> None:
        for key in body:
            if key not in known:
                hint = suggest.best(key, known) or f"; expected one of {', '.join(known)}"
                raise self.error(table, f"unknown key {key!r}{hint}", key)

    def provider(self, name: str, body: dict[str, Any]) -> ProviderSpec:
        table = f"providers.{name}"
        use = body.get("use")
        if use is None:
            raise self.error(table, "missing key 'use' (the provider type, e.g. \"openai\")", "use")
        self.check(table, "use", use, _is_name, 'a provider type name like "openai"')
        for key, value in body.items():
            if is_secret_option(key):
                raise self.error(table, f"{key!r}: {LITERAL_SECRET}", key)
            if looks_secret(value) and not key.endswith("_env"):  # those have their own rule
                raise self.error(table, f"{key!r} looks like a key: {LITERAL_SECRET}", key)
            if key == "headers" and isinstance(value, dict):
                for header, item in value.items():
                    if is_secret_header(header) or looks_secret(item):
                        raise self.error(table, literal_secret_header(header), key)
        limit = body.get("max_concurrent")
        if limit is not None:
            self.check(table, "max_concurrent", limit, valid_max_concurrent, MAX_CONCURRENT)
        options = {key: value for key, value in body.items() if key not in PROVIDER_KEYS}
        return ProviderSpec(name, use, options, limit)

    def chain(self, name: str, body: dict[str, Any]) -> ChainSpec:
        table = f"chains.{name}"
        self.known_keys(table, body, CHAIN_KEYS)
        if "providers" not in body:
            raise self.error(table, "missing key 'providers' (a list of provider names)")
        members = body["providers"]
        self.check(
            table,
            "providers",
            members,
            lambda v: isinstance(v, list) and bool(v) and all(_is_name(m) for m in v),
            "a non-empty list of provider names",
        )
        seen: set[str] = set()
        for member in members:
            if member in seen:
                raise self.error(table, f"'providers' lists {member!r} twice", "providers")
            seen.add(member)
        values = {key: body[key] for key in options.NAMES if key in body}
        if "timeouts" in values:
            self.timeouts_shape(table, values["timeouts"])
        for key, value in values.items():
            found = options.problem(key, value)
            if found is not None:
                shown = _shown(found.key, found.value)
                raise self.error(
                    table, f"{found.key!r} must be {found.expected}, not {shown}", found.key
                )
        contradiction = options.contradiction(values)
        if contradiction is not None:
            raise self.error(table, contradiction, "shuffle")
        if "timeouts" in values:
            values["timeouts"] = _floats(values["timeouts"])
        return ChainSpec(name, tuple(members), values)

    def timeouts_shape(self, table: str, value: Any) -> None:
        """`timeouts` is seconds or a table of the phases (its values are checked after)."""
        if isinstance(value, dict):
            self.known_keys(table, value, PHASES)
        elif not _is_number(value):
            raise self.error(
                table,
                f"'timeouts' must be {options.TIMEOUTS}, not {_toml_type(value)}",
                "timeouts",
            )

    def check_cycles(self, by_lower: Mapping[str, ChainSpec]) -> None:
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
                        raise self.error(
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
                    raise self.error(
                        f"chains.{loop[0]}",
                        f"chain refers to itself: {' -> '.join(loop)}",
                        "providers",
                    )
                path.append(inner.name)
                on_path.add(inner.name)
                tallest.append(0)
                members.append(iter(inner.providers))

    def models(
        self, body: dict[str, Any], by_lower: Mapping[str, ChainSpec]
    ) -> dict[str, ModelAlias]:
        aliases = {}
        for alias, value in body.items():
            if isinstance(value, dict):
                self.known_keys("models", value, ("chain", "model"))
                if "chain" not in value:
                    raise self.error(
                        "models",
                        f"{alias!r} is missing key 'chain' (the chain it routes to)",
                        alias,
                    )
                chain, model = value["chain"], value.get("model", "")
                self.check(
                    "models", f"{alias}.model", model, lambda v: isinstance(v, str), "a string"
                )
            else:
                chain, model = value, ""
            self.check(
                "models",
                alias,
                chain,
                _is_name,
                'a chain name, or { chain = "...", model = "..." }',
            )
            aliases[alias] = ModelAlias(
                alias, self.chain_name("models", alias, str(chain), by_lower), model
            )
        return aliases

    def server(self, body: dict[str, Any], by_lower: Mapping[str, ChainSpec]) -> ServerSettings:
        self.known_keys("server", body, SERVER_KEYS)
        defaults = ServerSettings()
        host = body.get("host", defaults.host)
        port = body.get("port", defaults.port)
        self.check(
            "server",
            "host",
            host,
            lambda v: isinstance(v, str) and bool(v),
            "a host name or address",
        )
        self.check(
            "server",
            "port",
            port,
            lambda v: _is_int(v) and 0 <= v <= 65535,
            "a port number (0-65535)",
        )
        chain = body.get("chain")
        if chain is not None:
            self.check("server", "chain", chain, _is_name, "a chain name")
            chain = self.chain_name("server", "chain", chain, by_lower)
        api_key_env = body.get("api_key_env")
        if api_key_env is not None and not is_env_name(api_key_env):
            raise self.error(
                "server",
                "'api_key_env' must be the NAME of an environment variable (like "
                "PROVIDERHUB_API_KEY), not the key itself; the value is not shown",
                "api_key_env",
            )
        limits = {key: body.get(key, getattr(defaults, key)) for key in SERVER_LIMITS}
        for key in ("request_timeout", "shutdown_grace"):
            self.check("server", key, limits[key], _is_positive, "a positive number of seconds")
        self.check(
            "server",
            "max_concurrent_requests",
            limits["max_concurrent_requests"],
            lambda v: _is_int(v) and v > 0,
            "a positive integer",
        )
        metrics = body.get("metrics", defaults.metrics)
        self.check("server", "metrics", metrics, lambda v: isinstance(v, bool), "true or false")
        return ServerSettings(
            host,
            port,
            chain,
            api_key_env,
            float(limits["request_timeout"]),
            limits["max_concurrent_requests"],
            float(limits["shutdown_grace"]),
            self.cors_origins(body.get("cors_origins", [])),
            metrics,
        )

    def cors_origins(self, value: Any) -> tuple[str, ...]:
        """`cors_origins`: "*" (any origin) or a list of origins like "https://app.example"."""
        if value == "*":
            return ("*",)
        self.check(
            "server",
            "cors_origins",
            value,
            lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
            '"*" or a list of origins like "https://app.example"',
        )
        for origin in value:
            if not ORIGIN.match(origin):
                raise self.error(
                    "server",
                    f"'cors_origins' lists {_shown('cors_origins', origin)}, which is not an "
                    'origin: scheme://host[:port] with no path, like "https://app.example"',
                    "cors_origins",
                )
        return tuple(value)

    def health(self, body: dict[str, Any]) -> HealthSettings:
        """`[health]`: the store, where Redis is (never a password in `url`), the breaker."""
        self.known_keys("health", body, HEALTH_KEYS)
        defaults = HealthSettings()
        values = {key: body.get(key, getattr(defaults, key)) for key in HEALTH_KEYS}
        self.check(
            "health", "store", values["store"], lambda v: v in HEALTH_STORES, '"memory" or "redis"'
        )
        url, url_env = values["url"], values["url_env"]
        if url is not None:
            self.check("health", "url", url, lambda v: isinstance(v, str), "a string")
            if redis_credentials(url):
                raise self.error(
                    "health",
                    "'url' must not carry a password (the value is not shown); put the whole "
                    "url in an environment variable and name it with url_env",
                    "url",
                )
            problem = redis_url_problem(url)
            if problem is not None:
                raise self.error("health", f"'url' {problem}, not {url!r}", "url")
        if url_env is not None and not is_env_name(url_env):
            raise self.error(
                "health",
                "'url_env' must be the NAME of an environment variable (like "
                "PROVIDERHUB_REDIS_URL), not the url itself; the value is not shown",
                "url_env",
            )
        if url is not None and url_env is not None:
            raise self.error("health", "give 'url' or 'url_env', not both", "url_env")
        if values["store"] == "redis" and url is None and url_env is None:
            raise self.error("health", "store = \"redis\" needs 'url' or 'url_env'", "store")
        self.check("health", "prefix", values["prefix"], lambda v: isinstance(v, str), "a string")
        self.check(
            "health",
            "failure_threshold",
            values["failure_threshold"],
            lambda v: _is_int(v) and v >= 1,
            "a whole number of at least 1",
        )
        self.check(
            "health",
            "timeout",
            values["timeout"],
            lambda v: _is_number(v) and 0 < v <= 10,
            "seconds (more than 0, at most 10)",
        )
        values["timeout"] = float(values["timeout"])
        for key in ("cooldown", "max_cooldown", "max_retry_after"):
            self.check(
                "health",
                key,
                values[key],
                lambda v: _is_number(v) and 0 <= v < math.inf,
                "seconds (>= 0)",
            )
            values[key] = float(values[key])
        if values["max_cooldown"] < values["cooldown"]:
            raise self.error(
                "health",
                f"'max_cooldown' ({values['max_cooldown']:g}) must be at least 'cooldown' "
                f"({values['cooldown']:g})",
                "max_cooldown",
            )
        return HealthSettings(**values)

    def chain_name(self, table: str, key: str, name: str, by_lower: Mapping[str, ChainSpec]) -> str:
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
        if not ok(value):
            raise self.error(table, f"{key!r} must be {expected}, not {_shown(key, value)}", key)


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_positive(value: Any) -> bool:
    return _is_number(value) and 0 < value < float("inf")


def _floats(timeouts: float | dict[str, float]) -> float | dict[str, float]:
    """A checked `timeouts` value with its seconds as floats."""
    if isinstance(timeouts, dict):
        return {phase: float(seconds) for phase, seconds in timeouts.items()}
    return float(timeouts)


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(NAME.match(value))


def _shown(key: str, value: Any) -> str:
    """How a message shows a wrong value: numbers and strings of up to 40 characters as
    themselves, so the problem is plain; anything longer, and any value of a secret-looking
    key or secret-looking value, only by its TOML kind."""
    if is_secret_option(key.rpartition(".")[2]) or looks_secret(value):
        return _toml_type(value)
    if _is_number(value) or (isinstance(value, str) and len(value) <= 40):
        return repr(value)
    return _toml_type(value)


def _toml_type(value: Any) -> str:
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
