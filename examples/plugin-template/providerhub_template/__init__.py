"""providerhub-template: a complete small plugin, to copy and rename.

It registers the provider type "ollama" (`use = "ollama"` in providerhub.toml, or
`OllamaChat(...)` in code): any endpoint speaking Ollama's /api/chat NDJSON stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import providerhub

from .provider import OllamaChat

__all__ = ["OllamaChat", "register_provider_types"]


@providerhub.hookimpl
def register_provider_types(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register the "ollama" provider type."""
    register("ollama", OllamaChat)
