"""The gateway's targets: `providerhub.targets`, with a model nothing answers as a 404.

The resolution rules are those of `providerhub.targets`. Here every configured chain is built
at startup (a bad one, or a default chain that is not configured, is a ConfigError before
anything listens), and a TargetNotFoundError is answered with RequestError 404
`model_not_found`, its message kept.
"""

from __future__ import annotations

from .. import targets
from ..errors import TargetNotFoundError
from ..targets import Target
from .wire import RequestError

__all__ = ["Target", "Targets"]


class Targets(targets.Targets):
    """The aliases, chains and providers a gateway serves, built once at startup."""

    eager = True

    def resolve(self, model: str) -> Target:
        """The target for a request's `model`; when there is none, a 404 `model_not_found`."""
        try:
            return super().resolve(model)
        except TargetNotFoundError as exc:
            raise RequestError(404, str(exc), param="model", code="model_not_found") from None
