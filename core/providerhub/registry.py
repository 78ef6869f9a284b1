"""The provider registry: plugins loaded in isolation, providers selected by name.

Each entry point of group "providerhub" is loaded on its own (pluggy's own loader stops at the
first failure): an import error, a hook that raises, a misspelled hook, a hook whose arguments
do not match the spec, a duplicate provider name, an object that is not a provider, or two
declarations of one entry-point name is recorded on `Registry.plugins` and `Registry.errors`,
and every other plugin still loads. A plugin registers atomically: when one of its hooks raises,
everything it registered is taken back. A provider whose `working` or `supports_model` raises
during a query does not match, and is recorded the same way. Set PROVIDERHUB_STRICT_PLUGINS=1 to
raise the first failure instead, with its traceback.
"""

from __future__ import annotations

import inspect
import logging
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any, cast

import pluggy

from . import discovery, hookspecs, suggest
from .errors import PluginError, ProviderNotFoundError
from .provider import Provider, has_base_stream

if TYPE_CHECKING:
    from .attempt import Attempt

log = logging.getLogger("providerhub.registry")

GROUP = "providerhub"
STRICT_ENV = "PROVIDERHUB_STRICT_PLUGINS"
MAX_CONCURRENT = "a positive whole number"
"""What a provider's `max_concurrent` must be, in words (the registry and the config say so)."""


def valid_max_concurrent(value: object) -> bool:
    """Whether `value` is a `max_concurrent`: a whole number of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(slots=True)
class PluginInfo:
    """One plugin: where it came from, what it registered, and what went wrong, if anything."""

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    providers: list[str] = field(default_factory=list)
    provider_types: list[str] = field(default_factory=list)
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
        self.pm = _Manager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._loaded: dict[int, str] = {}
        """id of each plugin object registered with `pm` -> its plugin name."""
        self.plugins: list[PluginInfo] = []
        self.errors: list[PluginFailure] = []
        self._providers: dict[str, Registered] = {}
        self._limits: dict[str, int] = {}
        self._types: dict[str, tuple[Callable[..., Provider], PluginInfo]] = {}
        self._reported_queries: set[tuple[str, str]] = set()  # (provider, attribute) that raised
        self._strict = os.environ.get(STRICT_ENV, "") not in ("", "0")
        self._raising: BaseException | None = None
        if entry_points:
            self._load_entry_points()
        for plugin in plugins:
            self.add_plugin(plugin)

    @classmethod
    def discover(cls) -> Registry:
        """A new registry of every installed plugin (entry-point group "providerhub")."""
        return cls()

    def get(self, name: str) -> Provider:
        """The provider called `name` (any case); ProviderNotFoundError suggests close names."""
        found = self._providers.get(name.lower())
        if found is not None:
            return found.provider
        raise ProviderNotFoundError(name, self._suggest(name))

    def entry(self, name: str) -> Registered | None:
        """The provider called `name` (any case) with the plugin that registered it, or None."""
        return self._providers.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._providers

    def providers(self, working: bool | None = None, model: str | None = None) -> list[Provider]:
        """Registered providers in registration order, optionally filtered."""
        return [entry.provider for entry in self.entries(working=working, model=model)]

    def entries(self, working: bool | None = None, model: str | None = None) -> list[Registered]:
        """Every provider with the plugin that registered it, filtered like `providers`.

        A provider whose `working` or `supports_model` raises does not match; the failure is
        recorded once on its plugin, so one broken provider cannot break a listing.
        """
        tests: list[tuple[str, Callable[[Provider], bool]]] = []
        if working is not None:
            tests.append(("working", lambda provider: bool(provider.working) == working))
        if model is not None:
            tests.append(("supports_model", lambda provider: bool(provider.supports_model(model))))
        return [
            entry
            for entry in self._providers.values()
            if all(self._matches(entry, attr, test) for attr, test in tests)
        ]

    def add_plugin(self, plugin: object, *, info: PluginInfo | None = None) -> PluginInfo:
        """Register a plugin object (a module or any object with hook implementations)."""
        if info is None:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            info = PluginInfo(name=name)
        self.plugins.append(info)
        other = self._loaded.get(id(plugin))
        if other is not None:
            self._fail(info, f"the same plugin object is already loaded as plugin {other!r}", None)
            return info
        self.pm.found = []
        try:
            self.pm.register(plugin, name=f"{info.name}#{len(self.plugins)}")
        except pluggy.PluginValidationError as exc:
            self._fail(info, self._invalid_hook(exc), exc)
            return info
        except Exception as exc:
            self._fail(info, f"cannot register: {type(exc).__name__}: {exc}", exc)
            return info
        self._loaded[id(plugin)] = info.name
        hooks = self._hooks_of(plugin, self.pm.found)
        self._check_hooks(hooks, info)
        if not self._run_hooks(hooks, info):
            self.pm.unregister(plugin)
            del self._loaded[id(plugin)]
        return info

    def provider_types(self) -> dict[str, Callable[..., Provider]]:
        """Configurable provider types by lower-case name (e.g. "openai"), for `use = ...`."""
        return {name: factory for name, (factory, _) in self._types.items()}

    def provider_type_source(self, name: str) -> PluginInfo:
        """The plugin that registered provider type `name` (KeyError if none did)."""
        return self._types[name.lower()][1]

    def set_max_concurrent(self, name: str, limit: int | None) -> None:
        """Cap the requests in flight to provider `name` (None: no cap), in every chain built
        on this registry: a chain skips it "at capacity" while that many are (counted by the
        chain's health store, so chains sharing a store share the cap). ValueError for a
        limit that is not a positive whole number, ProviderNotFoundError for an unknown name.
        """
        if limit is not None and not valid_max_concurrent(limit):
            raise ValueError(f"max_concurrent must be {MAX_CONCURRENT}, not {limit!r}")
        self.get(name)
        if limit is None:
            self._limits.pop(name.lower(), None)
        else:
            self._limits[name.lower()] = limit

    def max_concurrent(self, name: str) -> int | None:
        """The cap on requests in flight to provider `name` (any case), or None without one."""
        return self._limits.get(name.lower())

    def attempt_finished(self, attempt: Attempt) -> None:
        """Tell every plugin's `attempt_finished` hook about a final attempt (chains call this).

        A hook that raises is logged on "providerhub.registry", never raised: metrics must not
        break an answer.
        """
        try:
            self.pm.hook.attempt_finished(attempt=attempt)
        except Exception:
            log.exception("an attempt_finished hook failed")

    def register(self, provider: object, *, plugin: str = "<registered>") -> None:
        """Add one provider directly (embedding, configuration), as if from `plugin`."""
        info = next((known for known in self.plugins if known.name == plugin), None)
        if info is None:
            info = PluginInfo(name=plugin)
            self.plugins.append(info)
        self._add_provider(provider, info)

    def _load_entry_points(self) -> None:
        """Import and add each declared plugin on its own; a clash loads none of its claimants."""
        for name, found in discovery.declared(GROUP).items():
            infos = [PluginInfo(name, d.distribution, d.version, d.spec) for d in found]
            if len(found) > 1:
                self._clash(name, infos)
                continue
            try:
                module = found[0].load()
            except (Exception, SystemExit) as exc:
                self.plugins.append(infos[0])
                self._fail(infos[0], f"import failed: {type(exc).__name__}: {exc}", exc)
                continue
            self.add_plugin(module, info=infos[0])

    def _clash(self, name: str, infos: Sequence[PluginInfo]) -> None:
        """One entry-point name declared more than once: load none and say so on each."""
        ordered = sorted(infos, key=lambda info: info.source)
        sources = list(dict.fromkeys(info.source for info in ordered))
        if len(sources) > 1:
            owners = f"by {' and '.join(sources)}"
        else:
            owners = f"{len(ordered)} times by {sources[0]}"
        for info in ordered:
            self.plugins.append(info)
            reason = f"entry point name {name!r} is declared {owners}; neither is loaded"
            self._fail(info, reason, None)

    def _invalid_hook(self, exc: pluggy.PluginValidationError) -> str:
        """Pluggy's three-line validation message as one line naming the expected signature."""
        lines = str(exc).splitlines()
        definition = lines[1].removeprefix("hookimpl definition: ") if len(lines) > 2 else ""
        detail = lines[-1]
        hook = definition.partition("(")[0]
        caller = getattr(self.pm.hook, hook, None) if hook else None
        spec = caller.spec if caller is not None else None
        expected = f" (the hookspec is {hook}({', '.join(spec.argnames)}))" if spec else ""
        return f"invalid hook {definition}: {detail[:1].lower()}{detail[1:]}{expected}"

    def _hooks_of(
        self, plugin: object, found: Sequence[str]
    ) -> dict[str, tuple[pluggy.HookCaller, list[pluggy.HookImpl]]]:
        """The hooks `plugin` implements (`found`: one name per implementation) and its
        implementations of each, in pluggy's order of hooks and of their implementations.

        Linear in the plugin's own hooks: a new implementation sits at the end of its hook's
        list in all but unusual cases (tryfirst/trylast), so the search from the end stops at
        once, where pluggy's `get_hookcallers` would scan every plugin's.
        """
        order = {name: index for index, name in enumerate(vars(self.pm.hook))}
        hooks = {}
        for name in sorted(set(found), key=order.__getitem__):
            caller: pluggy.HookCaller = getattr(self.pm.hook, name)
            wanted = found.count(name)
            impls = []
            for impl in reversed(caller.get_hookimpls()):
                if impl.plugin is plugin:
                    impls.append(impl)
                    if len(impls) == wanted:
                        break
            hooks[name] = caller, impls[::-1]
        return hooks

    def _check_hooks(
        self, hooks: dict[str, tuple[pluggy.HookCaller, list[pluggy.HookImpl]]], info: PluginInfo
    ) -> None:
        """Report a plugin without hooks, and hooks that match no spec (pluggy ignores those)."""
        if not hooks:
            hint = "decorate register_providers with @providerhub.hookimpl"
            self._fail(info, f"no hook implementations found ({hint})", None)
        for caller, impls in hooks.values():
            if caller.has_spec() or all(impl.optionalhook for impl in impls):
                continue
            known = [name for name, hook in vars(self.pm.hook).items() if hook.has_spec()]
            hint = suggest.best(caller.name, known)
            self._fail(info, f"unknown hook {caller.name!r}{hint}", None)

    def _run_hooks(
        self, hooks: dict[str, tuple[pluggy.HookCaller, list[pluggy.HookImpl]]], info: PluginInfo
    ) -> bool:
        """Run the plugin's registration hooks: all of them take effect, or none does.

        When a hook raises, every provider and provider type the plugin registered, by any of
        its hooks, is taken back, the failure is recorded, and the answer is False.
        """
        registers: dict[str, Callable[..., None]] = {
            "register_providers": lambda provider: self._add_provider(provider, info),
            "register_provider_types": lambda name, factory: self._add_type(name, factory, info),
        }
        for hook, register in registers.items():
            for impl in hooks.get(hook, (None, []))[1]:
                try:
                    _call_plain(impl, register=register)
                except (Exception, SystemExit) as exc:
                    if exc is self._raising:
                        raise
                    self._withdraw(info)
                    self._fail(info, f"{hook} raised {type(exc).__name__}: {exc}", exc)
                    return False
        return True

    def _withdraw(self, info: PluginInfo) -> None:
        """Take back every provider and provider type registered for `info`'s plugin."""
        for name in info.providers:
            del self._providers[name.lower()]
        for name in info.provider_types:
            del self._types[name.lower()]
        info.providers.clear()
        info.provider_types.clear()

    def _add_provider(self, provider: object, info: PluginInfo) -> None:
        """Register `provider` for `info`'s plugin, or record why it is refused."""
        problem = _not_a_provider(provider)
        if problem:
            self._fail(info, problem, None)
            return
        provider = cast("Provider", provider)
        existing = self._providers.get(provider.name.lower())
        if existing is not None:
            source = existing.plugin.source
            self._fail(
                info, f"provider name {provider.name!r} is already registered by {source}", None
            )
            return
        self._providers[provider.name.lower()] = Registered(provider, info)
        info.providers.append(provider.name)

    def _add_type(self, name: object, factory: object, info: PluginInfo) -> None:
        """Register provider type `name` for `info`'s plugin, or record why it is refused."""
        if not isinstance(name, str) or not name or not callable(factory):
            self._fail(info, f"provider type {name!r} needs a name and a callable factory", None)
            return
        existing = self._types.get(name.lower())
        if existing is not None:
            source = existing[1].source
            self._fail(info, f"provider type {name!r} is already registered by {source}", None)
            return
        self._types[name.lower()] = (factory, info)
        info.provider_types.append(name)

    def _matches(self, entry: Registered, attr: str, test: Callable[[Provider], bool]) -> bool:
        """Whether `entry` passes `test`; one that raises does not, and is recorded once."""
        try:
            return test(entry.provider)
        except Exception as exc:
            key = (entry.provider.name.lower(), attr)
            if key not in self._reported_queries:
                self._reported_queries.add(key)
                reason = f"{entry.provider.name}.{attr} raised {type(exc).__name__}: {exc}"
                self._fail(entry.plugin, reason, exc)
            return False

    def _fail(self, info: PluginInfo, reason: str, exc: BaseException | None) -> None:
        info.errors.append(reason)
        trace = "".join(traceback.format_exception(exc)) if exc is not None else ""
        self.errors.append(PluginFailure(info.name, info.distribution, info.version, reason, trace))
        if self._strict:
            self._raising = exc or PluginError(info.name, info.distribution, reason)
            raise self._raising

    def _suggest(self, name: str) -> list[str]:
        """Registered names `name` may stand for (`providerhub.suggest`)."""
        return suggest.suggest(name, (entry.provider.name for entry in self._providers.values()))


def _call_plain(impl: pluggy.HookImpl, **kwargs: object) -> None:
    """Call one plain (not async, not wrapper) hook implementation with the arguments it names.

    Like pluggy, pass an implementation only the subset of the hook's arguments it takes.
    """
    if impl.hookwrapper or impl.wrapper:
        raise TypeError(f"{impl.function.__name__} must not be a hook wrapper")
    result = impl.function(**{name: kwargs[name] for name in impl.argnames})
    if inspect.isawaitable(result):
        close: Callable[[], object] | None = getattr(result, "close", None)
        if close is not None:
            close()
        raise TypeError(f"{impl.function.__name__} must be a plain function, not async")


def _not_a_provider(obj: object) -> str | None:
    """Why `obj` cannot be registered as a provider, or None when it can."""
    if isinstance(obj, type):
        label = f"class {obj.__qualname__!r}"
    else:
        label = f"an instance of {type(obj).__name__!r}"
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return f"registered {label}, which is not a provider: it has no name"
    for attr in ("create_async_generator", "supports_model"):
        if not callable(getattr(obj, attr, None)):
            return f"registered {label}, which is not a provider: it has no {attr}()"
    if not _fulfils(obj):
        return f"registered {label}, which is not a provider: it lacks the provider metadata"
    return None


def _fulfils(obj: object) -> bool:
    """Whether `obj` has the `Provider` protocol's members; an `AsyncGeneratorProvider` (class
    or instance) has them by construction, so only other objects pay the protocol's check."""
    return has_base_stream(obj) or isinstance(obj, Provider)


_HOOKABLE = (FunctionType, MethodType, classmethod, staticmethod)
"""What pluggy takes a hook implementation from; any other attribute it skips."""
_ABSENT = object()


class _Manager(pluggy.PluginManager):
    """pluggy's manager, remembering what each registration found and finding it faster.

    pluggy looks at every attribute of a plugin with `inspect.getattr_static`, some
    microseconds each: for a module, an attribute in its namespace that is not a function (or
    method, classmethod, staticmethod) is skipped at once, as pluggy would skip it. `found`
    gets the hook name of each implementation the last `register` took.
    """

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.found: list[str] = []

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        if isinstance(plugin, ModuleType):
            value = plugin.__dict__.get(name, _ABSENT)
            if value is not _ABSENT and not isinstance(value, _HOOKABLE):
                return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None:
            self.found.append(opts.get("specname") or name)
        return opts


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry of installed plugins; entry points are scanned once."""
    global _default
    if _default is None:
        _default = Registry.discover()
    return _default
