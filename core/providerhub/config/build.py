"""Turning a validated config into provider instances in a registry.

Its chains are built by `providerhub.targets`, the resolver of every name to what answers it.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import suggest
from ..errors import ConfigError
from ..targets import unknown_member
from .spec import ConfigSpec, HealthSettings, ProviderSpec, redis_url_problem

if TYPE_CHECKING:
    from ..registry import Registry
    from ..routing.health import HealthStore, MemoryHealthStore


def build_registry(config: ConfigSpec, registry: Registry | None = None) -> Registry:
    """Instantiate each `[providers.NAME]` from its type and register it as "config:<path>",
    with its `max_concurrent` (`Registry.set_max_concurrent`).

    Then check that every chain member names a provider (configured or from a plugin) or a
    chain. ConfigError names the table and key at fault. Building the same config into the same
    registry again keeps the instances registered the first time.
    """
    if registry is None:
        from ..registry import Registry

        registry = Registry.discover()
    ours = {
        name.lower()
        for info in registry.plugins
        if info.name == config.source
        for name in info.providers
    }
    for spec in config.providers.values():
        table = f"providers.{spec.name}"
        factory = _factory(config, registry, table, spec.use)
        _check_options(config, table, factory, spec.options)
        if spec.name.lower() not in ours:
            _register(config, registry, table, factory, spec)
        registry.set_max_concurrent(spec.name, spec.max_concurrent)
    for chain in config.chains.values():
        for member in chain.providers:
            if member not in registry and config.find_chain(member) is None:
                unknown = unknown_member(member, registry, config)
                raise _error(config, f"chains.{chain.name}", f"'providers': {unknown}", "providers")
    return registry


def build_health_store(config: ConfigSpec, environ: Mapping[str, str] | None = None) -> HealthStore:
    """A new store as `[health]` says: a `MemoryHealthStore` or a `RedisHealthStore` (its url
    from `url`, or from the variable `url_env` names in `environ`, default os.environ), with
    the breaker settings. ConfigError when the variable is unset or redis-py is missing."""
    settings = config.health
    if settings.store == "memory":
        return memory_health_store(settings)
    url = settings.url
    if settings.url_env is not None:
        url = (os.environ if environ is None else environ).get(settings.url_env)
        if not url:
            message = f"'url_env' names {settings.url_env}, which is not set"
            raise _error(config, "health", message, "url_env")
        problem = redis_url_problem(url)
        if problem is not None:  # the value may hold a password: never shown
            message = f"the url in {settings.url_env} (named by 'url_env') {problem}"
            raise _error(config, "health", message, "url_env")
    assert url is not None
    try:
        from ..routing.redis_health import RedisHealthStore
    except ImportError:
        message = "store = \"redis\" needs redis-py: pip install 'providerhub[redis]'"
        raise _error(config, "health", message, "store") from None
    return RedisHealthStore(
        url, prefix=settings.prefix, timeout=settings.timeout, **_breaker(settings)
    )


def memory_health_store(settings: HealthSettings) -> MemoryHealthStore:
    """A new in-process store with the breaker settings of `[health]`."""
    from ..routing.health import MemoryHealthStore

    return MemoryHealthStore(**_breaker(settings))


def _breaker(settings: HealthSettings) -> dict[str, Any]:
    return {
        "failure_threshold": settings.failure_threshold,
        "cooldown": settings.cooldown,
        "max_cooldown": settings.max_cooldown,
        "max_retry_after": settings.max_retry_after,
    }


def _register(
    config: ConfigSpec,
    registry: Registry,
    table: str,
    factory: Callable[..., Any],
    spec: ProviderSpec,
) -> None:
    """Instantiate `spec` and register it under the config's plugin label."""
    if spec.name in registry:
        raise _error(
            config,
            table,
            f"name {spec.name!r} is already used by provider "
            f"{registry.get(spec.name).name!r} from {_source(registry, spec.name)}",
        )
    try:
        provider = factory(name=spec.name, **spec.options)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise _error(config, table, message, _named_option(message, spec.options)) from None
    failures = len(registry.errors)
    registry.register(provider, plugin=config.source)
    if spec.name not in registry:
        reason = registry.errors[-1].reason if len(registry.errors) > failures else "refused"
        raise _error(config, table, f"cannot register: {reason}")


def _factory(config: ConfigSpec, registry: Registry, table: str, use: str) -> Callable[..., Any]:
    types = registry.provider_types()
    factory = types.get(use.lower())
    if factory is not None:
        return factory
    hint = suggest.best(use, types)
    if not hint:
        hint = (
            f"; known types: {', '.join(sorted(types))}"
            if types
            else "; no installed plugin provides types (pip install providerhub-openai)"
        )
    raise _error(config, table, f"unknown provider type {use!r}{hint}", "use")


def _check_options(
    config: ConfigSpec, table: str, factory: Callable[..., Any], options: dict[str, Any] | Any
) -> None:
    """Refuse options the factory does not accept, suggesting the closest accepted one."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [
        key
        for key, p in parameters.items()
        if key != "name" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for key in accepted:
        if parameters[key].default is inspect.Parameter.empty and key not in options:
            raise _error(config, table, f"missing key {key!r}", key)
    for key in options:
        if key not in accepted:
            raise _error(config, table, f"unknown key {key!r}{suggest.best(key, accepted)}", key)


def _named_option(message: str, options: Mapping[str, Any]) -> str | None:
    """The one option a factory's error message quotes ('models' or 'models[]'), if any."""
    named = [key for key in options if re.search(rf"'{re.escape(key)}(\[\])?'", message)]
    return named[0] if len(named) == 1 else None


def _source(registry: Registry, name: str) -> str:
    entry = registry.entry(name)
    return "the registry" if entry is None else entry.plugin.source


def _error(config: ConfigSpec, table: str, message: str, key: str | None = None) -> ConfigError:
    return ConfigError(message, path=config.path or "<string>", table=table, key=key)
