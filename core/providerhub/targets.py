"""From a name to what answers it: the one resolver of the CLI, the gateway and the config.

A name is a configured chain or a registered provider, in any case; a chain comes first (a
config refuses a chain named like a provider). A provider on its own is served by a
one-provider chain named after it, so it has the trace, health and errors of any chain.
A configured chain is built once per `Targets`, on first use, its members resolved the same way.

A request's `model` (the gateway's rule) resolves to a `Target`, first match wins:

1. a `[models]` alias: its chain, with the alias's model ("" = each member's default);
2. a configured chain's name: that chain, each member's default model;
3. a registered provider's name: that provider alone, its default model;
4. "NAME/MODEL" where NAME is a chain or a provider: that target with MODEL;
5. the default chain, with `model` passed through as given;
6. otherwise TargetNotFoundError, listing what exists.

A target that cannot serve the resolved model at all (no member supports it) is a
TargetNotFoundError too, so the caller learns before any upstream I/O. Model names that contain
"/" themselves (e.g. "meta-llama/Llama-3-8b" on OpenRouter) reach rule 5 unless their first part
names a target. The gateway answers TargetNotFoundError with a 404 `model_not_found`, the CLI
with exit code 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import suggest
from .errors import ConfigError, TargetNotFoundError
from .routing import FallbackChain, options
from .routing.health import HealthStore, default_health_store

if TYPE_CHECKING:
    from .config.spec import ChainSpec, ConfigSpec
    from .provider import Provider
    from .registry import Registry

__all__ = ["LISTED", "Target", "Targets", "unknown_member"]

LISTED = 20
"""How many names of each kind a not-found message lists."""


@dataclass(frozen=True, slots=True)
class Target:
    """A chain to stream from and the model to ask it for; `single` for a provider alone."""

    chain: FallbackChain
    model: str
    single: bool = False


class Targets:
    """The aliases, chains and providers of a registry and an optional config.

    `health` (default: the store shared by the process) is every chain's built here.
    `default_chain` (default: the config's `[server] chain`) names the configured chain of
    rule 5; ConfigError when there is no such chain.
    """

    eager: bool = False
    """Whether every configured chain is built at once (else each on first use), so that a bad
    one is a ConfigError before anything is served."""

    def __init__(
        self,
        registry: Registry,
        config: ConfigSpec | None = None,
        *,
        health: HealthStore | None = None,
        default_chain: str | None = None,
    ) -> None:
        self.registry = registry
        self.config = config
        self.health: HealthStore = health if health is not None else default_health_store()
        self._chains: dict[str, FallbackChain] = {}
        self._singles: dict[str, FallbackChain] = {}
        if self.eager:
            for name in self._chain_names():
                self.configured(name)
        default = default_chain or (config.server.chain if config is not None else None)
        if default is not None and (config is None or config.find_chain(default) is None):
            known = ", ".join(self._chain_names()) or "none"
            raise ConfigError(
                f"default chain {default!r} is not configured (chains: {known})",
                path=config.path if config is not None else None,
            )
        self._default = default

    @property
    def default(self) -> FallbackChain | None:
        """The chain of rule 5 (built on first use), or None without one."""
        return None if self._default is None else self.chain(self._default)

    @property
    def chains(self) -> dict[str, FallbackChain]:
        """Every configured chain by lower-case name (built now if it was not yet)."""
        return {name.lower(): self.configured(name) for name in self._chain_names()}

    def chain(self, name: str) -> FallbackChain | None:
        """The configured chain `name` (any case), or None when there is none."""
        spec = self.config.find_chain(name) if self.config is not None else None
        return None if spec is None else self._built(spec)

    def configured(self, name: str) -> FallbackChain:
        """The configured chain `name`; ConfigError suggests close names when there is none."""
        found = self.chain(name)
        if found is None:
            hint = suggest.hint(suggest.suggest(name, self._chain_names()))
            where = self.config.path if self.config is not None else None
            raise ConfigError(f"no chain named {name!r}{hint}", path=where)
        return found

    def single(self, name: str) -> FallbackChain:
        """The one-provider chain of the provider `name` (ProviderNotFoundError if none)."""
        key = name.lower()
        chain = self._singles.get(key)
        if chain is None:
            provider = self.registry.get(name)
            chain = FallbackChain(
                [provider], registry=self.registry, health=self.health, name=provider.name
            )
            self._singles[key] = chain
        return chain

    def member(self, name: str) -> Provider:
        """What a name in a list of members stands for: a configured chain, else a provider;
        TargetNotFoundError suggests close names of both."""
        chain = self.chain(name)
        if chain is not None:
            return chain
        if name in self.registry:
            return self.registry.get(name)
        raise unknown_member(name, self.registry, self.config)

    def resolve(self, model: str) -> Target:
        """The target for a request's `model` (see the module docstring)."""
        target = self._find(model)
        if target is None:
            raise TargetNotFoundError(model, f"model {model!r} not found; {self._available()}")
        if not target.chain.supports_model(target.model):
            raise TargetNotFoundError(
                model,
                f"model {model!r}: no provider of {target.chain.name!r} serves "
                f"model {target.model!r}",
            )
        return target

    def models(self) -> list[dict[str, Any]]:
        """Aliases, chains and providers as OpenAI model objects; `owned_by` is their source."""
        source = self.config.source if self.config is not None else "providerhub"
        seen: set[str] = set()
        found: list[dict[str, Any]] = []

        def add(name: str, kind: str, owner: str, **extra: Any) -> None:
            if name.lower() not in seen:
                seen.add(name.lower())
                found.append(
                    {"id": name, "object": "model", "created": 0, "owned_by": owner}
                    | {"kind": kind, **extra}
                )

        if self.config is not None:
            for alias in self.config.models.values():
                add(alias.name, "alias", source, chain=alias.chain, model=alias.model)
        for name in self._chain_names():
            add(name, "chain", source)
        for entry in self.registry.entries():
            add(entry.provider.name, "provider", entry.plugin.source)
        return found

    def _find(self, model: str) -> Target | None:
        alias = self.config.resolve_model(model) if self.config is not None else None
        if alias is not None:
            return Target(self.configured(alias.chain), alias.model)
        named = self._named(model, "")
        if named is not None:
            return named
        prefix, slash, rest = model.partition("/")
        if slash and rest:
            named = self._named(prefix, rest)
            if named is not None:
                return named
        if self.default is not None:
            return Target(self.default, model)
        return None

    def _named(self, name: str, model: str) -> Target | None:
        chain = self.chain(name)
        if chain is not None:
            return Target(chain, model)
        if name in self.registry:
            return Target(self.single(name), model, single=True)
        return None

    def _built(self, spec: ChainSpec) -> FallbackChain:
        """The chain of `spec`, built on first use; a member that is no target is a
        ConfigError naming the chain's table."""
        key = spec.name.lower()
        chain = self._chains.get(key)
        if chain is None:
            members = []
            for name in spec.providers:
                try:
                    members.append(self.member(name))
                except TargetNotFoundError as exc:
                    where = self.config.path if self.config is not None else None
                    raise ConfigError(
                        str(exc),
                        path=where or "<string>",
                        table=f"chains.{spec.name}",
                        key="providers",
                    ) from None
            values = {**spec.options, "timeouts": options.timeouts(spec.options.get("timeouts"))}
            chain = FallbackChain(
                members, registry=self.registry, health=self.health, name=spec.name, **values
            )
            self._chains[key] = chain
        return chain

    def _chain_names(self) -> list[str]:
        config = self.config
        return [spec.name for spec in config.chains.values()] if config is not None else []

    def _available(self) -> str:
        config = self.config
        aliases = [alias.name for alias in config.models.values()] if config is not None else []
        kinds = [
            ("aliases", aliases),
            ("chains", self._chain_names()),
            ("providers", [provider.name for provider in self.registry.providers()]),
        ]
        parts = []
        for kind, names in kinds:
            if names:
                shown = ", ".join(names[:LISTED])
                more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
                parts.append(f"{kind}: {shown}{more}")
        if not parts:
            return "nothing is configured"
        return "available " + "; ".join(parts) + " (GET /v1/models lists them)"


def unknown_member(name: str, registry: Registry, config: ConfigSpec | None) -> TargetNotFoundError:
    """The error for a name that is neither a configured chain nor a registered provider,
    suggesting close names of both (`Targets.member`, and the config's check of its chains)."""
    chains = [spec.name for spec in config.chains.values()] if config is not None else []
    close = suggest.suggest(name, [provider.name for provider in registry.providers()] + chains)
    return TargetNotFoundError(
        name, f"no provider or chain named {name!r}{suggest.hint(close)}", close
    )
