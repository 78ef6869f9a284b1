"""Chat messages and their validation, done once before any network I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidRequestError

Message = Mapping[str, str]
Messages = Sequence[Message]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def validate_messages(messages: Any) -> list[dict[str, str]]:
    """A plain-dict copy of `messages`, or InvalidRequestError naming the index and field."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            f"messages must be a list of {{'role', 'content'}} dicts, not {type(messages).__name__}"
        )
    if not messages:
        raise InvalidRequestError("messages must not be empty")
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(
                f"messages[{index}] must be a dict with 'role' and 'content', "
                f"not {type(message).__name__}"
            )
        for field in ("role", "content"):
            if field not in message:
                raise InvalidRequestError(f"messages[{index}] has no {field!r}")
        for field, value in message.items():
            if not isinstance(field, str):
                raise InvalidRequestError(f"messages[{index}] has a non-string key {field!r}")
            if not isinstance(value, str):
                raise InvalidRequestError(
                    f"messages[{index}].{field} must be a string, not {type(value).__name__}"
                )
        if message["role"] not in ROLES:
            raise InvalidRequestError(
                f"messages[{index}].role is {message['role']!r}; "
                f"expected one of {', '.join(sorted(ROLES))}"
            )
        checked.append(dict(message))
    return checked


def validate_model(model: Any) -> str:
    """Return `model` (empty means the provider's default) or raise InvalidRequestError."""
    if not isinstance(model, str):
        raise InvalidRequestError(f"model must be a string, not {type(model).__name__}")
    return model
