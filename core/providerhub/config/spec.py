"""What a parsed providerhub.toml holds, as plain data (building from it is elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """`[providers.NAME]`: an instance of provider type `use`, built with `options`;
    `max_concurrent` is a routing setting (`Registry.set_max_concurrent`), not an option."""

    name: str
    use: str
    options: Mapping[str, Any]
    max_concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """`[chains.NAME]`: members by name (providers or other chains) and FallbackChain options."""

    name: str
    providers: tuple[str, ...]
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """`[models]`: a model name that routes to a chain; `model` "" means each member's default."""

    name: str
    chain: str
    model: str = ""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """`[server]`: where the gateway listens, which chain answers by default, the name of the
    environment variable holding the key clients must send (`api_key_env`; None: no auth), and
    its limits: seconds to receive a whole request (`request_timeout`), requests answered at
    once (`max_concurrent_requests`), seconds in-flight answers get after a stop signal
    (`shutdown_grace`), the browser origins allowed by CORS (`cors_origins`; empty: no CORS
    headers; `("*",)`: any origin), and whether `GET /metrics` serves Prometheus metrics
    (`metrics`, off by default: it needs the `providerhub[metrics]` extra)."""

    host: str = "127.0.0.1"
    port: int = 8080
    chain: str | None = None
    api_key_env: str | None = None
    request_timeout: float = 30.0
    max_concurrent_requests: int = 256
    shutdown_grace: float = 5.0
    cors_origins: tuple[str, ...] = ()
    metrics: bool = False


HEALTH_STORES = ("memory", "redis")


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """`[health]`: which store keeps provider health (`store`: "memory", this process's own,
    or "redis", shared by every process using the same Redis `url` and `prefix`; a url with a
    password only through `url_env`, the name of the variable holding it) and the circuit
    breaker's settings, read by either store."""

    store: str = "memory"
    url: str | None = None
    url_env: str | None = None
    prefix: str = "providerhub:health:"
    failure_threshold: int = 3
    cooldown: float = 30.0
    max_cooldown: float = 300.0
    max_retry_after: float = 600.0
    timeout: float = 0.075
    """Seconds a Redis operation may take before the process serves from its own view."""


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    """A validated providerhub.toml as data: what `Config` builds providers and chains from."""

    path: Path | None = None
    providers: Mapping[str, ProviderSpec] = field(default_factory=dict)
    chains: Mapping[str, ChainSpec] = field(default_factory=dict)
    models: Mapping[str, ModelAlias] = field(default_factory=dict)
    server: ServerSettings = field(default_factory=ServerSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    _by_lower: dict[str, ChainSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_lower = {spec.name.lower(): spec for spec in self.chains.values()}
        object.__setattr__(self, "_by_lower", by_lower)

    @property
    def source(self) -> str:
        """The plugin label configured providers are registered under: "config:<path>"."""
        return f"config:{self.path if self.path is not None else '<string>'}"

    def find_chain(self, name: str) -> ChainSpec | None:
        """The chain called `name` in any case, or None."""
        return self._by_lower.get(name.lower())

    def resolve_model(self, model: str) -> ModelAlias | None:
        """The alias called `model`, or None when `model` is not an alias."""
        return self.models.get(model)


def redis_credentials(url: str) -> bool:
    """Whether a Redis url carries credentials (`user:pass@`, or `password=` / `username=` in
    its query, which redis-py reads too)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    query = parse_qs(parts.query)
    return "@" in parts.netloc or "password" in query or "username" in query


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis url (as "must be ..."), or None: redis:// or rediss:// with a
    host, an optional numeric port and an optional numeric database, or unix:// with a path."""
    expected = "must be a redis://host:port/db url"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return expected
    if parts.scheme == "unix":
        return None if parts.path else f"{expected} (or unix:///path/to/redis.sock)"
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return expected
    if port is None and parts.netloc.rstrip("]").endswith(":"):
        return expected
    database = parts.path.lstrip("/")
    return None if not database or (database.isascii() and database.isdigit()) else expected
