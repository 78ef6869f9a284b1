"""providerhub-openai: any OpenAI-compatible chat-completions endpoint as a providerhub provider.

The plugin registers the provider type "openai": a config table `[providers.NAME]` with
`use = "openai"` builds an `OpenAICompatible(name=NAME, ...)` from its options. In code, build
instances directly and pass them to a chain or `Registry.register`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import providerhub
from providerhub.chat_completions import Completion, CompletionStream

from .provider import OpenAICompatible

__all__ = ["Completion", "CompletionStream", "OpenAICompatible", "register_provider_types"]


@providerhub.hookimpl
def register_provider_types(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register the "openai" provider type."""
    register("openai", OpenAICompatible)
