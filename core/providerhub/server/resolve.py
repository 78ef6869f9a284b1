"""Which chain answers a request's `model`, and the catalogue `/v1/models` lists.

Resolution, first match wins (names of chains and providers in any case):

1. a `[models]` alias: its chain, with the alias's model ("" = each member's default);
2. a configured chain's name: that chain, each member's default model;
3. a registered provider's name: that provider alone, its default model;
4. "NAME/MODEL" where NAME is a chain or a provider: that target with MODEL;
5. the `[server] chain` (default chain), with `model` passed through as given;
6. otherwise RequestError 404 `model_not_found`, listing what exists.

A target that cannot serve the resolved model at all (no member supports it) is a 404 too, so
the client learns before any upstream I/O. Model names that contain "/" themselves (e.g.
"meta-llama/Llama-3-8b" on OpenRouter) reach rule 5 unless their first part names a target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..routing import FallbackChain
from ..routing.health import HealthStore, default_health_store
from .wire import RequestError

if TYPE_CHECKING:
    from ..config import Config
    from ..registry import Registry

LISTED = 20
"""How many names of each kind a model_not_found message lists."""


@dataclass(frozen=True, slots=True)
class Target:
    """A chain to stream from and the model to ask it for; `single` for a provider alone."""

    chain: FallbackChain
    model: str
    single: bool = False


class Targets:
    """The aliases, chains and providers a gateway serves, built once at startup."""

    def __init__(
        self,
        registry: Registry,
        config: Config | None = None,
        *,
        health: HealthStore | None = None,
        default_chain: str | None = None,
    ) -> None:
        self.registry = registry
        self.config = config
        self.health: HealthStore = health if health is not None else default_health_store()
        self.chains: dict[str, FallbackChain] = {}
        if config is not None:
            for name in config.chains:
                self.chains[name.lower()] = config.chain(name, registry, health=self.health)
        default = default_chain or (config.server.chain if config is not None else None)
        self.default: FallbackChain | None = None
        if default is not None:
            self.default = self._chain(default)
            if self.default is None:
                known = ", ".join(chain.name for chain in self.chains.values()) or "none"
                raise ConfigError(
                    f"default chain {default!r} is not configured (chains: {known})",
                    path=config.path if config is not None else None,
                )
        self._singles: dict[str, FallbackChain] = {}

    def resolve(self, model: str) -> Target:
        """The target for a request's `model` (see the module docstring)."""
        target = self._find(model)
        if target is None:
            raise RequestError(
                404,
                f"model {model!r} not found; {self._available()}",
                param="model",
                code="model_not_found",
            )
        if not target.chain.supports_model(target.model):
            raise RequestError(
                404,
                f"model {model!r}: no provider of {target.chain.name!r} serves "
                f"model {target.model!r}",
                param="model",
                code="model_not_found",
            )
        return target

    def _find(self, model: str) -> Target | None:
        alias = self.config.resolve_model(model) if self.config is not None else None
        if alias is not None:
            chain = self._chain(alias.chain)
            assert chain is not None
            return Target(chain, alias.model)
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
        chain = self._chain(name)
        if chain is not None:
            return Target(chain, model)
        if name in self.registry:
            return Target(self._single(name), model, single=True)
        return None

    def _chain(self, name: str) -> FallbackChain | None:
        return self.chains.get(name.lower())

    def _single(self, name: str) -> FallbackChain:
        """A one-provider chain: the same trace, health and error mapping as any chain."""
        key = name.lower()
        chain = self._singles.get(key)
        if chain is None:
            provider = self.registry.get(name)
            chain = FallbackChain(
                [provider], registry=self.registry, health=self.health, name=provider.name
            )
            self._singles[key] = chain
        return chain

    def _available(self) -> str:
        kinds = [
            ("aliases", [model["id"] for model in self.models() if model["kind"] == "alias"]),
            ("chains", [chain.name for chain in self.chains.values()]),
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
        for chain in self.chains.values():
            add(chain.name, "chain", source)
        for entry in self.registry.entries():
            add(entry.provider.name, "provider", entry.plugin.source)
        return found
