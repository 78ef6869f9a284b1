"""What a request needs beyond plain text, and whether a provider declares it can serve that.

Each capability is a provider flag (`supports_tools`, ...), False unless the provider says
otherwise. A request needs "tools" when it offers tools or carries a tool-call history,
"response_format" when it asks for structured output, and "vision", "audio" or "files" for
content parts of those kinds. A chain skips a member that lacks one (the trace says which); a
direct call refuses before any I/O, so a feature is never silently dropped.

A provider that declares none of the content-part capabilities receives every message
`content` as a string: text parts are joined (nothing is lost). Any other part (a refusal part,
a type providerhub does not know) needs "content parts", which a provider has when it declares
one of those capabilities, so such a request is skipped or refused like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import UnsupportedCapabilityError
from .messages import CheckedMessages, flatten_text, has_tool_history, parts_of

__all__ = ["CAPABILITIES", "PARTS", "adapt", "missing", "param_for", "required"]

CAPABILITIES: Mapping[str, str] = {
    "tools": "supports_tools",
    "vision": "supports_vision",
    "audio": "supports_audio",
    "files": "supports_files",
    "response_format": "supports_response_format",
}
"""Capability name -> the provider flag that declares it."""

_PARTS = {"image_url": "vision", "input_audio": "audio", "file": "files"}
_PART_CAPABILITIES = frozenset(_PARTS.values())
PARTS = "content parts"
"""The need of a part that only a provider taking parts as given can send (no flag of its own:
any content-part capability implies it)."""
_FLATTENED = frozenset({"text"})
_TOOL_PARAMS = ("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call")
_NONE: frozenset[str] = frozenset()


def required(messages: list[dict[str, Any]], params: Mapping[str, Any]) -> frozenset[str]:
    """The capabilities a validated request needs (empty for plain text chat)."""
    kinds = parts_of(messages)
    needs = {_PARTS.get(kind, PARTS) for kind in kinds - _FLATTENED}
    if any(params.get(name) is not None for name in _TOOL_PARAMS) or has_tool_history(messages):
        needs.add("tools")
    if _structured(params.get("response_format")):
        needs.add("response_format")
    return frozenset(needs) if needs else _NONE


def param_for(capability: str, params: Mapping[str, Any]) -> str:
    """The request field that makes it need `capability` ("tools", "response_format", or
    "messages" for content parts and a tool-call history), for error messages."""
    if capability == "response_format":
        return capability
    if capability == "tools":
        return next((name for name in _TOOL_PARAMS if params.get(name) is not None), "messages")
    return "messages"


def _structured(response_format: object) -> bool:
    """Whether `response_format` asks for more than plain text (`{"type": "text"}` does not)."""
    if response_format is None:
        return False
    return not (isinstance(response_format, Mapping) and response_format.get("type") == "text")


def missing(provider: object, needs: frozenset[str]) -> list[str]:
    """The capabilities in `needs` that `provider` does not declare, in table order
    ("content parts" last)."""
    if not needs:
        return []
    lacking = [
        name
        for name, flag in CAPABILITIES.items()
        if name in needs and not getattr(provider, flag, False)
    ]
    if PARTS in needs and not _takes_parts(provider):
        lacking.append(PARTS)
    return lacking


def _takes_parts(provider: object) -> bool:
    """Whether `provider` receives content parts as given (else string content)."""
    return any(getattr(provider, CAPABILITIES[name], False) for name in _PART_CAPABILITIES)


def adapt(provider: Any, messages: CheckedMessages, params: Mapping[str, Any]) -> CheckedMessages:
    """`messages` as `provider` can take them, or UnsupportedCapabilityError before any I/O."""
    lacking = missing(provider, required(messages, params))
    if lacking:
        raise UnsupportedCapabilityError(provider.name, lacking)
    return messages if _takes_parts(provider) else flatten_text(messages, provider.name)
