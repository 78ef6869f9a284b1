"""The gateway's targets: `providerhub.targets`, with a model nothing answers as a 404.

The resolution rules are those of `providerhub.targets`. Without a store given, the gateway
uses the one `[health]` configures (`providerhub.config.build.build_health_store`, closed with
the gateway; with the default settings, the store shared by the process). Every configured
chain is built at startup (a bad one, or a default chain that is not configured, is a
ConfigError before anything listens), and a TargetNotFoundError is answered with RequestError 404
`model_not_found`, its message kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import targets
from ..config.build import build_health_store
from ..config.spec import HealthSettings
from ..errors import TargetNotFoundError
from ..targets import Target
from .wire import RequestError

if TYPE_CHECKING:
    from ..config.spec import ConfigSpec
    from ..registry import Registry
    from ..routing.health import HealthStore

__all__ = ["Target", "Targets"]


class Targets(targets.Targets):
    """The aliases, chains and providers a gateway serves, built once at startup."""

    eager = True

    def __init__(
        self,
        registry: Registry,
        config: ConfigSpec | None = None,
        *,
        health: HealthStore | None = None,
        default_chain: str | None = None,
    ) -> None:
        owned = None
        if health is None and config is not None and config.health != HealthSettings():
            health = owned = build_health_store(config)
        super().__init__(registry, config, health=health, default_chain=default_chain)
        self._owned = owned

    async def aclose(self) -> None:
        """Close the health store built from `[health]` (a shared one sends the reports still
        queued first); a store given by the caller stays the caller's."""
        close = getattr(self._owned, "aclose", None)
        if close is not None:
            await close()

    def resolve(self, model: str) -> Target:
        """The target for a request's `model`; when there is none, a 404 `model_not_found`."""
        try:
            return super().resolve(model)
        except TargetNotFoundError as exc:
            raise RequestError(404, str(exc), param="model", code="model_not_found") from None
