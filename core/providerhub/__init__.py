"""providerhub: pluggable multi-provider LLM chat with fallback chains.

Everything public is importable from here. Importing this package is cheap: aiohttp is loaded
only when a request is made (or when `UpstreamHTTPError` is first looked up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .attempt import Attempt, Outcome
from .config import ConfigError
from .errors import (
    AllProvidersFailedError,
    EmptyStreamError,
    InvalidRequestError,
    MalformedStreamError,
    MissingCredentialsError,
    ModelNotSupportedError,
    PluginError,
    ProviderHubError,
    ProviderNotFoundError,
    ProviderNotWorkingError,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .health import HealthStore, MemoryHealthStore, Ticket, default_health_store
from .hookspecs import hookimpl, hookspec
from .messages import Message, Messages, validate_messages
from .provider import AsyncGeneratorProvider, Provider, hybridmethod
from .registry import PluginFailure, PluginInfo, Registry, default_registry
from .routing import FallbackChain
from .sse import ServerSentEvent, SSEDecoder
from .stream import ChatStream, ChunkStream
from .timeouts import Timeouts

if TYPE_CHECKING:
    from .http import UpstreamHTTPError

__version__ = "0.1.0"

__all__ = [
    "AllProvidersFailedError",
    "AsyncGeneratorProvider",
    "Attempt",
    "ChatStream",
    "ChunkStream",
    "ConfigError",
    "EmptyStreamError",
    "FallbackChain",
    "HealthStore",
    "InvalidRequestError",
    "MalformedStreamError",
    "MemoryHealthStore",
    "Message",
    "Messages",
    "MissingCredentialsError",
    "ModelNotSupportedError",
    "Outcome",
    "PluginError",
    "PluginFailure",
    "PluginInfo",
    "Provider",
    "ProviderHubError",
    "ProviderNotFoundError",
    "ProviderNotWorkingError",
    "Registry",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamInterruptedError",
    "Ticket",
    "Timeouts",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamTimeoutError",
    "default_health_store",
    "default_registry",
    "hookimpl",
    "hookspec",
    "hybridmethod",
    "validate_messages",
]


def __getattr__(name: str) -> Any:
    if name == "UpstreamHTTPError":
        from .http import UpstreamHTTPError

        return UpstreamHTTPError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
