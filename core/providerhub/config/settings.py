"""`[server]` and `[health]`: the gateway's settings and the health store's, with defaults.

`[health]` never takes a password in its Redis `url` (the whole url goes in an environment
variable, named by `url_env`); `[server] api_key_env` is a variable's name, never a key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..redaction import is_env_name
from .checks import Checker, is_int, is_name, is_number, is_positive, shown
from .spec import (
    HEALTH_STORES,
    ChainSpec,
    HealthSettings,
    ServerSettings,
    redis_credentials,
    redis_url_problem,
)

SERVER_LIMITS = ("request_timeout", "max_concurrent_requests", "shutdown_grace")
SERVER_KEYS = ("host", "port", "chain", "api_key_env", *SERVER_LIMITS, "cors_origins", "metrics")
"""The keys of `[server]`."""
ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?\Z")
"""A browser origin: scheme, host and an optional port, nothing after them."""
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
"""The keys of `[health]`."""


def server(c: Checker, body: dict[str, Any], by_lower: Mapping[str, ChainSpec]) -> ServerSettings:
    """`[server]`: where the gateway listens, its default chain, key variable and limits."""
    c.known_keys("server", body, SERVER_KEYS)
    defaults = ServerSettings()
    host = body.get("host", defaults.host)
    port = body.get("port", defaults.port)
    c.check(
        "server",
        "host",
        host,
        lambda v: isinstance(v, str) and bool(v),
        "a host name or address",
    )
    c.check(
        "server",
        "port",
        port,
        lambda v: is_int(v) and 0 <= v <= 65535,
        "a port number (0-65535)",
    )
    chain = body.get("chain")
    if chain is not None:
        c.check("server", "chain", chain, is_name, "a chain name")
        chain = c.chain_name("server", "chain", chain, by_lower)
    api_key_env = body.get("api_key_env")
    if api_key_env is not None and not is_env_name(api_key_env):
        raise c.error(
            "server",
            "'api_key_env' must be the NAME of an environment variable (like "
            "PROVIDERHUB_API_KEY), not the key itself; the value is not shown",
            "api_key_env",
        )
    limits = {key: body.get(key, getattr(defaults, key)) for key in SERVER_LIMITS}
    for key in ("request_timeout", "shutdown_grace"):
        c.check("server", key, limits[key], is_positive, "a positive number of seconds")
    c.check(
        "server",
        "max_concurrent_requests",
        limits["max_concurrent_requests"],
        lambda v: is_int(v) and v > 0,
        "a positive integer",
    )
    metrics = body.get("metrics", defaults.metrics)
    c.check("server", "metrics", metrics, lambda v: isinstance(v, bool), "true or false")
    return ServerSettings(
        host,
        port,
        chain,
        api_key_env,
        float(limits["request_timeout"]),
        limits["max_concurrent_requests"],
        float(limits["shutdown_grace"]),
        cors_origins(c, body.get("cors_origins", [])),
        metrics,
    )


def cors_origins(c: Checker, value: Any) -> tuple[str, ...]:
    """`cors_origins`: "*" (any origin) or a list of origins like "https://app.example"."""
    if value == "*":
        return ("*",)
    c.check(
        "server",
        "cors_origins",
        value,
        lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
        '"*" or a list of origins like "https://app.example"',
    )
    for origin in value:
        if not ORIGIN.match(origin):
            raise c.error(
                "server",
                f"'cors_origins' lists {shown('cors_origins', origin)}, which is not an "
                'origin: scheme://host[:port] with no path, like "https://app.example"',
                "cors_origins",
            )
    return tuple(value)


def health(c: Checker, body: dict[str, Any]) -> HealthSettings:
    """`[health]`: the store, where Redis is (never a password in `url`), the breaker."""
    c.known_keys("health", body, HEALTH_KEYS)
    defaults = HealthSettings()
    values = {key: body.get(key, getattr(defaults, key)) for key in HEALTH_KEYS}
    c.check("health", "store", values["store"], lambda v: v in HEALTH_STORES, '"memory" or "redis"')
    url, url_env = values["url"], values["url_env"]
    if url is not None:
        c.check("health", "url", url, lambda v: isinstance(v, str), "a string")
        if redis_credentials(url):
            raise c.error(
                "health",
                "'url' must not carry a password (the value is not shown); put the whole "
                "url in an environment variable and name it with url_env",
                "url",
            )
        problem = redis_url_problem(url)
        if problem is not None:
            raise c.error("health", f"'url' {problem}, not {url!r}", "url")
    if url_env is not None and not is_env_name(url_env):
        raise c.error(
            "health",
            "'url_env' must be the NAME of an environment variable (like "
            "PROVIDERHUB_REDIS_URL), not the url itself; the value is not shown",
            "url_env",
        )
    if url is not None and url_env is not None:
        raise c.error("health", "give 'url' or 'url_env', not both", "url_env")
    if values["store"] == "redis" and url is None and url_env is None:
        raise c.error("health", "store = \"redis\" needs 'url' or 'url_env'", "store")
    c.check("health", "prefix", values["prefix"], lambda v: isinstance(v, str), "a string")
    c.check(
        "health",
        "failure_threshold",
        values["failure_threshold"],
        lambda v: is_int(v) and v >= 1,
        "a whole number of at least 1",
    )
    c.check(
        "health",
        "timeout",
        values["timeout"],
        lambda v: is_number(v) and 0 < v <= 10,
        "seconds (more than 0, at most 10)",
    )
    values["timeout"] = float(values["timeout"])
    for key in ("cooldown", "max_cooldown", "max_retry_after"):
        c.check(
            "health",
            key,
            values[key],
            lambda v: is_number(v) and 0 <= v < math.inf,
            "seconds (>= 0)",
        )
        values[key] = float(values[key])
    if values["max_cooldown"] < values["cooldown"]:
        raise c.error(
            "health",
            f"'max_cooldown' ({values['max_cooldown']:g}) must be at least 'cooldown' "
            f"({values['cooldown']:g})",
            "max_cooldown",
        )
    return HealthSettings(**values)
