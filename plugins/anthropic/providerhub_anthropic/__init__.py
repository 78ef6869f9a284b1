"""providerhub-anthropic: Anthropic's native Messages API as a providerhub provider.

The plugin registers the provider type "anthropic": a config table `[providers.NAME]` with
`use = "anthropic"` builds an `AnthropicProvider(name=NAME, ...)` from its options. In code,
build instances directly and pass them to a chain or `Registry.register`. Callers speak
chat-completions; the plugin translates requests and answers both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import providerhub

from .provider import AnthropicProvider

__all__ = ["AnthropicProvider", "register_provider_types"]


@providerhub.hookimpl
def register_provider_types(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register the "anthropic" provider type."""
    register("anthropic", AnthropicProvider)
