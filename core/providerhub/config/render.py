"""The resolved config as TOML, for `providerhub config check`: secrets never appear.

Keys are shown by environment variable name with whether the variable is set, never its value
(`api_key_env`, each `headers_env` entry as a dotted key); secret-looking options and headers
(by name or by the shape of their values, `redaction.looks_secret`) and credentials inside
URLs are redacted.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..redaction import REDACTED, is_env_name, is_secret_option, looks_secret, redact_headers
from .spec import ConfigSpec, HealthSettings

if TYPE_CHECKING:
    from ..registry import Registry

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def render(config: ConfigSpec, registry: Registry | None = None) -> str:
    """TOML equivalent to `config`; with a registry, comments say where each name resolves."""
    lines = [f"# providerhub config: {config.path or '<string>'}"]
    for spec in config.providers.values():
        lines += ["", f"[providers.{_key(spec.name)}]"]
        if registry is not None:
            lines.append(f"# type {spec.use!r} from {_type_source(registry, spec.use)}")
        lines.append(f"use = {_value(spec.use)}")
        if spec.max_concurrent is not None:
            lines.append(f"max_concurrent = {spec.max_concurrent}")
        for key, value in spec.options.items():
            if key == "headers_env" and isinstance(value, dict) and value:
                lines += [
                    _variable(f"{_key(key)}.{_key(str(header))}", variable)
                    for header, variable in value.items()
                ]
            elif key.endswith("_env") and isinstance(value, str):
                lines.append(_variable(_key(key), value))
            else:
                lines.append(f"{_key(key)} = {_value(_redacted(key, value))}")
    for chain in config.chains.values():
        lines += [
            "",
            f"[chains.{_key(chain.name)}]",
            f"providers = {_value(list(chain.providers))}",
        ]
        lines += [f"{_key(key)} = {_value(value)}" for key, value in chain.options.items()]
        if registry is not None:
            lines += [
                f"# {member}: {_member(config, registry, member)}" for member in chain.providers
            ]
    if config.models:
        lines += ["", "[models]"]
        for alias in config.models.values():
            target: Any = (
                {"chain": alias.chain, "model": alias.model} if alias.model else alias.chain
            )
            lines.append(f"{_key(alias.name)} = {_value(target)}")
    server = config.server
    lines += ["", "[server]", f"host = {_value(server.host)}", f"port = {server.port}"]
    if server.chain is not None:
        lines.append(f"chain = {_value(server.chain)}")
    if server.api_key_env is not None:
        lines.append(_variable("api_key_env", server.api_key_env))
    lines += [
        f"request_timeout = {_value(server.request_timeout)}",
        f"max_concurrent_requests = {server.max_concurrent_requests}",
        f"shutdown_grace = {_value(server.shutdown_grace)}",
    ]
    if server.cors_origins:
        shown = "*" if server.cors_origins == ("*",) else list(server.cors_origins)
        lines.append(f"cors_origins = {_value(shown)}")
    if server.metrics:
        lines.append("metrics = true")
    return "\n".join(lines + _health(config.health)) + "\n"


def _health(health: HealthSettings) -> list[str]:
    """The `[health]` table (the url only when it has no password: the parser refuses any)."""
    lines = ["", "[health]", f"store = {_value(health.store)}"]
    if health.url is not None:
        lines.append(f"url = {_value(health.url if '@' not in health.url else REDACTED)}")
    if health.url_env is not None:
        lines.append(_variable("url_env", health.url_env))
    lines.append(f"prefix = {_value(health.prefix)}")
    lines.append(f"failure_threshold = {health.failure_threshold}")
    for key in ("cooldown", "max_cooldown", "max_retry_after", "timeout"):
        lines.append(f"{key} = {getattr(health, key):g}")
    return lines


def _variable(key: str, name: Any) -> str:
    """`key = "NAME"  # set`: a variable by name and whether it is set, never its value.

    A value that is no variable name (a key pasted in its place) is redacted instead.
    """
    if not is_env_name(name):
        return f"{key} = {_value(REDACTED)}"
    return f"{key} = {_value(name)}  # {'set' if os.environ.get(name) else 'not set'}"


def _member(config: ConfigSpec, registry: Registry, name: str) -> str:
    if config.find_chain(name) is not None:
        return "chain"
    entry = registry.entry(name)
    if entry is None:
        return "not found"
    provider = entry.provider
    notes = [f"from {entry.plugin.source}"]
    if not provider.working:
        notes.append("not working: chains skip it unless ignore_working")
    if provider.needs_auth and (why := provider.missing_credentials()):
        notes.append(f"missing credentials ({why}): chains skip it")
    return "; ".join(notes)


def _type_source(registry: Registry, use: str) -> str:
    try:
        return registry.provider_type_source(use).source
    except KeyError:
        return "nowhere (unknown type)"


def _redacted(key: str, value: Any) -> Any:
    if is_secret_option(key) or looks_secret(value):
        return REDACTED
    if key == "headers" and isinstance(value, dict):
        return redact_headers(value)
    if isinstance(value, str) and "@" in value and "://" in value:
        parts = urlsplit(value)
        if parts.username or parts.password:
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))
    return value


def _key(key: str) -> str:
    return key if BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value), ensure_ascii=False)
