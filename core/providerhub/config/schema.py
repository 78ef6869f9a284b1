"""`Config`: a validated providerhub.toml and what it builds (providers, chains, its text)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..targets import Targets
from .build import build_registry
from .render import render
from .spec import ConfigSpec

if TYPE_CHECKING:
    from ..registry import Registry
    from ..routing import FallbackChain
    from ..routing.health import HealthStore


@dataclass(frozen=True, slots=True)
class Config(ConfigSpec):
    """A validated providerhub.toml. Building providers needs a registry (for their types)."""

    def build_registry(self, registry: Registry | None = None) -> Registry:
        """`registry` (default: a fresh discovery) plus the configured provider instances."""
        return build_registry(self, registry)

    def chain(
        self, name: str, registry: Registry, *, health: HealthStore | None = None
    ) -> FallbackChain:
        """The configured chain `name`, members resolved in `registry` (from build_registry)
        by `providerhub.targets`; ConfigError when there is no such chain.

        `health` defaults to the store shared by the process.
        """
        return Targets(registry, self, health=health).configured(name)

    def render(self, registry: Registry | None = None) -> str:
        """The resolved config as TOML, secrets redacted; `registry` adds where names come from."""
        return render(self, registry)
