"""Plugin discovery through entry points, isolation of broken plugins, selection by name.

Each entry point of group "providerhub" is loaded on its own: an import error, a hook that
raises, a misspelled hook, a duplicate provider name or an object that is not a provider is
recorded on `Registry.plugins` (and `Registry.errors`) and every other plugin still loads.
Set PROVIDERHUB_STRICT_PLUGINS=1 to raise the first failure instead, with its traceback.
"""

from __future__ import annotations

import difflib
import os
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import importlib_metadata
import pluggy

from . import hookspecs
from .errors import PluginError, ProviderNotFoundError
from .provider import Provider

GROUP = "providerhub"
STRICT_ENV = "PROVIDERHUB_STRICT_PLUGINS"


@dataclass(slots=True)
class PluginInfo:
    """One plugin: where it came from, what it registered, and what went wrong, if anything."""

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    providers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        """All problems of this plugin in one line, or None when it loaded cleanly."""
        return "; ".join(self.errors) if self.errors else None

    @property
    def source(self) -> str:
        """The distribution and version, or the plugin name for plugins given as objects."""
        if self.distribution:
            return f"{self.distribution} {self.version}" if self.version else self.distribution
        return self.name


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A recorded plugin problem, for `Registry.errors`."""

    plugin: str
    distribution: str | None
    version: str | None
    reason: str
    traceback: str = ""

    def __str__(self) -> str:
        where = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"{self.plugin}{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Registered:
    """A provider and the plugin that registered it."""

    provider: Provider
    plugin: PluginInfo


class Registry:
    """Providers by name, from plugins found through entry points or given as objects."""

    def __init__(self, plugins: Sequence[object] = (), *, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.errors: list[PluginFailure] = []
        self._providers: dict[str, Registered] = {}
        self._strict = os.environ.get(STRICT_ENV, "") not in ("", "0")
        if entry_points:
            self._load_entry_points()
        for plugin in plugins:
            self.add_plugin(plugin)

    @classmethod
    def discover(cls) -> Registry:
        """A registry of every installed plugin (entry-point group "providerhub")."""
        return cls()

    def get(self, name: str) -> Provider:
        """The provider called `name` (any case); ProviderNotFoundError suggests close names."""
        found = self._providers.get(name.lower())
        if found is not None:
            return found.provider
        names = [entry.provider.name for entry in self._providers.values()]
        by_lower = {known.lower(): known for known in names}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
        raise ProviderNotFoundError(name, [by_lower[match] for match in close])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._providers

    def providers(self, working: bool | None = None, model: str | None = None) -> list[Provider]:
        """Registered providers in registration order, optionally filtered."""
        return [
            entry.provider
            for entry in self._providers.values()
            if (working is None or bool(entry.provider.working) == working)
            and (model is None or entry.provider.supports_model(model))
        ]

    def entries(self) -> list[Registered]:
        """Every provider with the plugin that registered it."""
        return list(self._providers.values())

    def add_plugin(self, plugin: object, *, info: PluginInfo | None = None) -> PluginInfo:
        """Register a plugin object (a module or any object with hook implementations)."""
        if info is None:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            info = PluginInfo(name=name)
        self.plugins.append(info)
        try:
            self.pm.register(plugin, name=f"{info.name}#{len(self.plugins)}")
        except Exception as exc:
            self._fail(info, f"cannot register: {exc}", exc)
            return info
        self._check_hook_names(plugin, info)
        for impl in self.pm.hook.register_providers.get_hookimpls():
            if impl.plugin is plugin:
                self._call_register(impl.function, info)
        return info

    def register(self, provider: object, *, plugin: str = "<registered>") -> None:
        """Add one provider directly (embedding, configuration), as if from `plugin`."""
        info = next((known for known in self.plugins if known.name == plugin), None)
        if info is None:
            info = PluginInfo(name=plugin)
            self.plugins.append(info)
        self._add_provider(provider, info)

    def _load_entry_points(self) -> None:
        points = _unique_entry_points(importlib_metadata.entry_points(group=GROUP))
        by_name: dict[str, list[Any]] = {}
        for point in points:
            by_name.setdefault(point.name, []).append(point)
        for name, clashing in by_name.items():
            if len(clashing) > 1:
                owners = " and ".join(_dist_label(point) for point in clashing)
                for point in clashing:
                    info = _info_for(point)
                    self.plugins.append(info)
                    self._fail(info, f"entry point name {name!r} is declared by {owners}", None)
                continue
            point = clashing[0]
            info = _info_for(point)
            try:
                module = point.load()
            except Exception as exc:
                self.plugins.append(info)
                self._fail(info, f"import failed: {type(exc).__name__}: {exc}", exc)
                continue
            self.add_plugin(module, info=info)

    def _check_hook_names(self, plugin: object, info: PluginInfo) -> None:
        """Report hook implementations that match no spec (pluggy would ignore them silently)."""
        known = sorted(name for name, caller in vars(self.pm.hook).items() if caller.has_spec())
        for name, caller in vars(self.pm.hook).items():
            if caller.has_spec() or not any(i.plugin is plugin for i in caller.get_hookimpls()):
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self._fail(info, f"unknown hook {name!r}{hint}", None)

    def _call_register(self, function: Any, info: PluginInfo) -> None:
        added: list[Provider] = []

        def register(provider: object) -> None:
            if self._add_provider(provider, info):
                added.append(provider)  # type: ignore[arg-type]

        try:
            function(register=register)
        except Exception as exc:
            for provider in added:
                self._providers.pop(provider.name.lower(), None)
                info.providers.remove(provider.name)
            self._fail(info, f"register_providers raised {type(exc).__name__}: {exc}", exc)

    def _add_provider(self, provider: object, info: PluginInfo) -> bool:
        problem = _not_a_provider(provider)
        if problem:
            self._fail(info, problem, None)
            return False
        assert isinstance(provider, Provider)
        key = provider.name.lower()
        existing = self._providers.get(key)
        if existing is not None:
            self._fail(
                info,
                f"provider name {provider.name!r} is already registered by "
                f"{existing.plugin.source}",
                None,
            )
            return False
        self._providers[key] = Registered(provider, info)
        info.providers.append(provider.name)
        return True

    def _fail(self, info: PluginInfo, reason: str, exc: BaseException | None) -> None:
        info.errors.append(reason)
        trace = "".join(traceback.format_exception(exc)) if exc is not None else ""
        self.errors.append(PluginFailure(info.name, info.distribution, info.version, reason, trace))
        if self._strict:
            if exc is not None:
                raise exc
            raise PluginError(info.name, info.distribution, reason)


def _not_a_provider(obj: object) -> str | None:
    """Why `obj` cannot be registered as a provider, or None when it can."""
    label = getattr(obj, "__name__", None) or type(obj).__name__
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return f"{label!r} is not a provider: it has no name"
    for attr in ("create_async_generator", "supports_model"):
        if not callable(getattr(obj, attr, None)):
            return f"{label!r} is not a provider: it has no {attr}()"
    if not isinstance(obj, Provider):
        return f"{label!r} is not a provider: it lacks the metadata flags of a provider"
    return None


def _unique_entry_points(points: Iterable[Any]) -> list[Any]:
    """Entry points with the same distribution seen twice on sys.path counted once."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for point in points:
        dist = point.dist
        key = (_normalize(dist.name) if dist else "", point.name, point.value)
        if key not in seen:
            seen.add(key)
            unique.append(point)
    return unique


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _info_for(point: Any) -> PluginInfo:
    dist = point.dist
    return PluginInfo(
        name=point.name,
        distribution=dist.name if dist else None,
        version=dist.version if dist else None,
        entry_point=f"{point.name} = {point.value}",
    )


def _dist_label(point: Any) -> str:
    dist = point.dist
    return f"{dist.name} {dist.version}" if dist else point.value


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry of installed plugins, discovered on first use."""
    global _default
    if _default is None:
        _default = Registry.discover()
    return _default
