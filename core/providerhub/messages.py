"""Chat-completions messages: their types, and validation done once before any network I/O.

`validate_messages` checks the full OpenAI message shape (content parts, tool calls, tool
results, refusals) so a bad history fails at call time with an `InvalidRequestError` naming the
index and field path, instead of as an opaque upstream 400 after a fallback chain has tried every
member. Keys it does not know pass through untouched, so nothing a provider might use is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

from .errors import InvalidRequestError

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


# The known content parts; parts of other types pass validation untouched.
class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImageURL(TypedDict):
    url: str
    detail: NotRequired[str]


class ImageURLPart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(TypedDict):
    data: str
    format: str


class InputAudioPart(TypedDict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileData(TypedDict, total=False):
    """At least one of `file_data` (base64) and `file_id` is required."""

    file_data: str
    file_id: str
    filename: str


class FilePart(TypedDict):
    type: Literal["file"]
    file: FileData


class RefusalPart(TypedDict):
    """Only assistant messages carry refusal parts."""

    type: Literal["refusal"]
    refusal: str


ContentPart = TextPart | ImageURLPart | InputAudioPart | FilePart | RefusalPart


class ToolCallFunction(TypedDict):
    name: str
    arguments: str  # JSON text, as the model wrote it


class ToolCall(TypedDict):
    """An entry of an assistant message's `tool_calls`."""

    id: str
    type: str  # "function"
    function: ToolCallFunction


class SystemMessage(TypedDict):
    role: Literal["system"]
    content: str | list[TextPart]
    name: NotRequired[str]


class DeveloperMessage(TypedDict):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: NotRequired[str]


class UserMessage(TypedDict):
    role: Literal["user"]
    content: str | list[TextPart | ImageURLPart | InputAudioPart | FilePart]
    name: NotRequired[str]


class AssistantMessage(TypedDict):
    """`content` may be None or absent when there are `tool_calls` or a `refusal`."""

    role: Literal["assistant"]
    content: NotRequired[str | list[TextPart | RefusalPart] | None]
    tool_calls: NotRequired[list[ToolCall]]
    refusal: NotRequired[str | None]
    name: NotRequired[str]


class ToolMessage(TypedDict):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage
# What calls accept: plain dicts as well as the TypedDicts above.
Messages = Sequence[Mapping[str, Any]]


class CheckedMessages(list[dict[str, Any]]):
    """Messages `check_messages` has validated, carried through one request: the gateway, a
    chain and the guard pass them on without checking them again. Only providerhub makes
    them (from a caller's messages, or from checked ones); a provider must not modify them.
    Callers never see one: `validate_messages` returns a plain list."""

    __slots__ = ()


# Roles that may carry each known part type; unknown types are allowed anywhere.
_PART_ROLES = {
    "text": ROLES,
    "image_url": frozenset({"user"}),
    "input_audio": frozenset({"user"}),
    "file": frozenset({"user"}),
    "refusal": frozenset({"assistant"}),
}
_ABSENT: Any = object()
_KINDS = "a string or a list of content parts"


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    """A new plain dict per message (nested values shared), or InvalidRequestError naming where."""
    return list(check_messages(messages))


def check_messages(messages: Any) -> CheckedMessages:
    """`validate_messages` for providerhub's own layers: messages checked already (a
    CheckedMessages) come back as they are, so one request is validated once."""
    if type(messages) is CheckedMessages:
        return messages
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            f"messages must be a list of {{'role', 'content'}} dicts, not {type(messages).__name__}"
        )
    if not messages:
        raise InvalidRequestError("messages must not be empty")
    checked = CheckedMessages()
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(
                f"messages[{index}] must be a dict with 'role' and 'content', "
                f"not {type(message).__name__}"
            )
        if "role" not in message:
            raise InvalidRequestError(f"messages[{index}] has no 'role'")
        for key in message:
            if not isinstance(key, str):
                raise InvalidRequestError(f"messages[{index}] has a non-string key {key!r}")
        role = message["role"]
        if not isinstance(role, str):
            raise InvalidRequestError(
                f"messages[{index}].role must be a string, not {type(role).__name__}"
            )
        if role not in ROLES:
            raise InvalidRequestError(
                f"messages[{index}].role is {role!r}; expected one of {', '.join(sorted(ROLES))}"
            )
        content = message.get("content", _ABSENT)
        if not isinstance(content, str) or len(message) > 2 or role == "tool":
            _check_fields(message, role, content, f"messages[{index}]")
        checked.append(dict(message))
    return checked


def validate_model(model: Any) -> str:
    """Return `model` (empty means the provider's default) or raise InvalidRequestError."""
    if not isinstance(model, str):
        raise InvalidRequestError(f"model must be a string, not {type(model).__name__}")
    return model


def flatten_text(messages: Sequence[Mapping[str, Any]], provider: str) -> CheckedMessages:
    """Copies of validated `messages` with string content, for providers that take only text.

    Text parts are joined with newlines and null content becomes ""; any other part raises
    InvalidRequestError, so an image or a file is never silently dropped.
    """
    flat = CheckedMessages()
    for index, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            flat.append(dict(message))
            continue
        texts = []
        for number, part in enumerate(content or ()):
            if part["type"] != "text":
                raise InvalidRequestError(
                    f"{provider} takes text only: "
                    f"messages[{index}].content[{number}] has type {part['type']!r}"
                )
            texts.append(part["text"])
        flat.append({**message, "content": "\n".join(texts)})
    return flat


def parts_of(messages: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The content-part types used in validated `messages` (string content adds none)."""
    kinds: set[str] = set()
    for message in messages:
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            kinds.update(part["type"] for part in content)
    return frozenset(kinds)


def has_tool_history(messages: Iterable[Mapping[str, Any]]) -> bool:
    """Whether validated `messages` hold assistant tool calls or tool results."""
    return any(message["role"] == "tool" or message.get("tool_calls") for message in messages)


def _string(value: Any, path: str, *, empty: bool = True) -> None:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{path} must be a string, not {type(value).__name__}")
    if not value and not empty:
        raise InvalidRequestError(f"{path} must not be empty")


def _field(container: Mapping[str, Any], key: str, path: str, *, empty: bool = True) -> None:
    """Require `container[key]` to be a string (non-empty unless `empty`)."""
    if key not in container:
        raise InvalidRequestError(f"{path} has no {key!r}")
    _string(container[key], f"{path}.{key}", empty=empty)


def _check_fields(message: Mapping[str, Any], role: str, content: Any, where: str) -> None:
    """Check what the common `{"role", "content": str}` case lacks (`content` _ABSENT if so)."""
    if "name" in message:
        _string(message["name"], f"{where}.name")
    if not isinstance(content, str):
        _check_content(message, role, content, where)
    _check_extras(message, role, where)


def _check_content(message: Mapping[str, Any], role: str, content: Any, where: str) -> None:
    if content is None or content is _ABSENT:
        if role == "assistant" and (
            message.get("tool_calls") is not None or message.get("refusal") is not None
        ):
            return
        if content is _ABSENT:
            raise InvalidRequestError(f"{where} has no 'content'")
        if role == "assistant":
            raise InvalidRequestError(
                f"{where}.content may be null only when the message has tool_calls or a refusal"
            )
    if not isinstance(content, list | tuple):
        kinds = "a string, a list of content parts or null" if role == "assistant" else _KINDS
        raise InvalidRequestError(f"{where}.content must be {kinds}, not {type(content).__name__}")
    if not content:
        raise InvalidRequestError(f"{where}.content must not be an empty list")
    for number, part in enumerate(content):
        _check_part(part, role, f"{where}.content[{number}]")


def _check_part(part: Any, role: str, path: str) -> None:
    if not isinstance(part, Mapping):
        raise InvalidRequestError(f"{path} must be a dict with a 'type', not {type(part).__name__}")
    if "type" not in part:
        raise InvalidRequestError(f"{path} has no 'type'")
    kind = part["type"]
    _string(kind, f"{path}.type")
    roles = _PART_ROLES.get(kind)
    if roles is None:
        return
    if role not in roles:
        article = "an" if role == "assistant" else "a"
        raise InvalidRequestError(
            f"{path} has type {kind!r}, which {article} {role} message cannot carry"
        )
    if kind not in part:  # every known type keeps its payload under its own name
        raise InvalidRequestError(f"{path} has no {kind!r}")
    body = part[kind]
    if kind in ("text", "refusal"):
        _string(body, f"{path}.{kind}")
    elif kind == "image_url":
        if not isinstance(body, Mapping) or "url" not in body:
            raise InvalidRequestError(f"{path}.image_url must be a dict with a 'url'")
        _string(body["url"], f"{path}.image_url.url", empty=False)
        if "detail" in body:
            _string(body["detail"], f"{path}.image_url.detail")
    elif kind == "input_audio":
        if not isinstance(body, Mapping) or "data" not in body or "format" not in body:
            raise InvalidRequestError(f"{path}.input_audio must be a dict with 'data' and 'format'")
        _string(body["data"], f"{path}.input_audio.data")
        _string(body["format"], f"{path}.input_audio.format")
    else:
        if not isinstance(body, Mapping) or ("file_data" not in body and "file_id" not in body):
            raise InvalidRequestError(f"{path}.file must be a dict with a 'file_data' or 'file_id'")
        for key in ("file_data", "file_id", "filename"):
            if key in body:
                _string(body[key], f"{path}.file.{key}")


def _check_extras(message: Mapping[str, Any], role: str, where: str) -> None:
    """Check the role-specific fields: tool_calls (null counts as absent), tool_call_id, refusal."""
    if message.get("tool_calls") is not None:
        if role != "assistant":
            raise InvalidRequestError(f"{where}.tool_calls is only allowed on assistant messages")
        _check_tool_calls(message["tool_calls"], f"{where}.tool_calls")
    if role == "tool":
        _field(message, "tool_call_id", where, empty=False)
    elif "tool_call_id" in message:
        raise InvalidRequestError(f"{where}.tool_call_id is only allowed on tool messages")
    if "refusal" in message:
        if role != "assistant":
            raise InvalidRequestError(f"{where}.refusal is only allowed on assistant messages")
        refusal = message["refusal"]
        if refusal is not None and not isinstance(refusal, str):
            raise InvalidRequestError(
                f"{where}.refusal must be a string or null, not {type(refusal).__name__}"
            )


def _check_tool_calls(calls: Any, path: str) -> None:
    if not isinstance(calls, list | tuple):
        raise InvalidRequestError(
            f"{path} must be a list of tool calls, not {type(calls).__name__}"
        )
    if not calls:
        raise InvalidRequestError(f"{path} must not be empty")
    for number, call in enumerate(calls):
        where = f"{path}[{number}]"
        if not isinstance(call, Mapping):
            raise InvalidRequestError(f"{where} must be a dict, not {type(call).__name__}")
        _field(call, "id", where, empty=False)
        _field(call, "type", where)
        if call["type"] != "function":
            raise InvalidRequestError(f"{where}.type is {call['type']!r}; expected 'function'")
        if "function" not in call:
            raise InvalidRequestError(f"{where} has no 'function'")
        function = call["function"]
        if not isinstance(function, Mapping):
            raise InvalidRequestError(
                f"{where}.function must be a dict, not {type(function).__name__}"
            )
        _field(function, "name", f"{where}.function", empty=False)
        if "arguments" not in function:
            raise InvalidRequestError(f"{where}.function has no 'arguments'")
        if not isinstance(function["arguments"], str):
            raise InvalidRequestError(
                f"{where}.function.arguments must be a string (JSON text), "
                f"not {type(function['arguments']).__name__}"
            )
