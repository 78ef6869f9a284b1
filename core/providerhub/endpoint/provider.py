"""EndpointProvider: the base of a provider that is one configured HTTP endpoint."""

from __future__ import annotations

from ..pool import Pool
from ..provider import AsyncGeneratorProvider
from .call import serves
from .credentials import Credentials

__all__ = ["EndpointProvider"]


class EndpointProvider(AsyncGeneratorProvider):
    """A configured endpoint: its `credentials`, and the models it serves (`models`, or any
    model when none are listed; `default_model` when a call names none), and its `pool` of
    keep-alive connections (`max_connections` per host: `options.max_connections`). Subclasses
    set those in their constructor and implement `create_event_generator`."""

    credentials: Credentials
    pool: Pool

    def supports_model(self, model: str) -> bool:
        """With `models` configured, those (and the default); with none, any model."""
        return serves(model, self.models, self.default_model)

    def missing_credentials(self) -> str | None:
        """Why no usable key is configured ("environment variable X is not set"), or None."""
        return self.credentials.missing()
