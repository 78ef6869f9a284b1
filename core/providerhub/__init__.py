"""providerhub: pluggable multi-provider LLM chat with fallback chains.

Everything public is importable from here. Importing this package is cheap: aiohttp is loaded
only when a request is made (or when `UpstreamHTTPError` is first looked up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .attempt import Attempt, Outcome
from .errors import (
    AllProvidersFailedError,
    AtCapacityError,
    ConfigError,
    CoolingDownError,
    DeadlinePassed,
    EmptyStreamError,
    InvalidRequestError,
    MalformedStreamError,
    MissingCredentialsError,
    ModelNotSupportedError,
    PluginError,
    ProviderHubError,
    ProviderNotFoundError,
    ProviderNotWorkingError,
    SpuriousCancellation,
    StreamInterruptedError,
    TargetNotFoundError,
    UnsupportedCapabilityError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .events import Event, Logprobs, RefusalDelta, ToolCallDelta, ToolCalls
from .hookspecs import hookimpl, hookspec
from .messages import (
    AssistantMessage,
    ContentPart,
    Message,
    Messages,
    ToolCall,
    ToolMessage,
    UserMessage,
    validate_messages,
)
from .provider import AsyncGeneratorProvider, Provider, hybridmethod
from .registry import PluginFailure, PluginInfo, Registry, default_registry
from .routing import FallbackChain
from .routing.health import HealthStore, MemoryHealthStore, Ticket, default_health_store
from .routing.stream import ChatStream
from .sse import ServerSentEvent, SSEDecoder
from .stream import ChunkStream, EventStream
from .timeouts import Timeouts

if TYPE_CHECKING:
    from .http import UpstreamHTTPError

__version__ = "0.1.0"

__all__ = [
    "AllProvidersFailedError",
    "AssistantMessage",
    "AsyncGeneratorProvider",
    "AtCapacityError",
    "Attempt",
    "ChatStream",
    "ChunkStream",
    "ConfigError",
    "ContentPart",
    "CoolingDownError",
    "DeadlinePassed",
    "EmptyStreamError",
    "Event",
    "EventStream",
    "FallbackChain",
    "HealthStore",
    "InvalidRequestError",
    "Logprobs",
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
    "RefusalDelta",
    "Registry",
    "SSEDecoder",
    "ServerSentEvent",
    "SpuriousCancellation",
    "StreamInterruptedError",
    "TargetNotFoundError",
    "Ticket",
    "Timeouts",
    "ToolCall",
    "ToolCallDelta",
    "ToolCalls",
    "ToolMessage",
    "UnsupportedCapabilityError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamTimeoutError",
    "UserMessage",
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
