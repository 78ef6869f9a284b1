"""Chat-completions requests as Anthropic Messages bodies: pure functions, no I/O.

`request_body` turns validated chat-completions messages and request parameters into the body
of `POST /v1/messages`. Everything either translates faithfully or is refused with an
`InvalidRequestError` naming the message field or parameter, so nothing is dropped silently:

- a message field other than role, content, tool_calls, tool_call_id and refusal (`name`,
  say) is refused unless null;
- system and developer messages, wherever they stand, become the top-level `system` text blocks
  in their order; the other turns alternate user/assistant, same-role neighbours merged;
- text, images (a base64 data URL or an http(s) URL) and files (PDF or plain text, as a data
  URL) become Anthropic blocks; an assistant's refusal is kept as its text;
- assistant `tool_calls` become `tool_use` blocks (arguments parsed to `input`; empty arguments
  mean none), `tool` messages `tool_result` blocks in a user turn;
- tools, tool_choice, parallel_tool_calls, stop, temperature, top_p, max_tokens (or
  max_completion_tokens) and user (or safety_identifier, as metadata.user_id) translate; top_k
  is Anthropic's own and passes through. A parameter given as null counts as absent, and n=1,
  logprobs=false, response_format text and stream_options.include_usage (usage is always
  reported) ask for nothing Anthropic would do differently.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from providerhub import InvalidRequestError

__all__ = ["IMAGE_TYPES", "PARAMETERS", "request_body", "translate_messages"]

PARAMETERS = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "user",
        "safety_identifier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "stream_options",
        "n",
        "logprobs",
    }
)
"""The request parameters a call may carry; any other is refused by name."""

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""The image media types Anthropic accepts."""
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)((?:;[^;,]*)*);base64,(.*)\Z", re.DOTALL)
_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
_MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id", "refusal"})
"""What a message may carry (a field with any other name, `name` too, is refused unless null)."""
Block = dict[str, Any]


def request_body(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    max_tokens: int,
    stream: bool,
) -> dict[str, Any]:
    """The Messages API body for a validated chat-completions request.

    `max_tokens` is used when `params` has neither max_tokens nor max_completion_tokens.
    """
    given = {key: value for key, value in params.items() if value is not None}
    unknown = sorted(set(given) - PARAMETERS)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise InvalidRequestError(f"parameters with no Anthropic equivalent: {names}")
    system, turns = translate_messages(messages)
    body: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(given, max_tokens)}
    if system:
        body["system"] = system
    body["messages"] = turns
    _check_neutral(given)
    for name in ("temperature", "top_p"):
        if name in given:
            body[name] = _unit(name, given[name])
    if "top_k" in given:
        body["top_k"] = _count("top_k", given["top_k"])
    if "stop" in given:
        stops = _stop(given["stop"])
        if stops:
            body["stop_sequences"] = stops
    user = _user_id(given)
    if user is not None:
        body["metadata"] = {"user_id": user}
    if "tools" in given:
        body["tools"] = [_tool(tool, f"tools[{n}]") for n, tool in enumerate(_list(given, "tools"))]
    choice = _tool_choice(given)
    if choice is not None:
        body["tool_choice"] = choice
    body["stream"] = stream
    return body


def translate_messages(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[list[Block], list[dict[str, Any]]]:
    """The `system` text blocks and the alternating turns of validated messages."""
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        for key, value in message.items():
            if key not in _MESSAGE_FIELDS and value is not None:
                raise InvalidRequestError(f"{where}.{key} has no Anthropic equivalent")
        role = message["role"]
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_texts(content, where))
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message, content, where)]
        elif role == "user":
            blocks = [
                block
                for number, part in enumerate(_parts(content))
                if (block := _user_block(part, f"{where}.content[{number}]")) is not None
            ]
        else:
            blocks = _assistant_blocks(message, content, where)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequestError("messages hold no user or assistant content to send")
    return system, turns


def _parts(content: Any) -> list[Mapping[str, Any]]:
    """Content as a list of parts (a string is one text part; null none)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def _texts(content: Any, where: str) -> list[Block]:
    """Text blocks of a message that may carry only text (empty texts say nothing: left out)."""
    blocks = []
    for number, part in enumerate(_parts(content)):
        if part["type"] != "text":
            raise InvalidRequestError(
                f"{where}.content[{number}] has type {part['type']!r}; only text is allowed here"
            )
        if part["text"]:
            blocks.append({"type": "text", "text": part["text"]})
    return blocks


def _user_block(part: Mapping[str, Any], where: str) -> Block | None:
    kind = part["type"]
    if kind == "text":
        return {"type": "text", "text": part["text"]} if part["text"] else None
    if kind == "image_url":
        return _image(part["image_url"], where)
    if kind == "file":
        return _document(part["file"], where)
    raise InvalidRequestError(f"{where} has type {kind!r}, which Anthropic cannot take")


def _image(image: Mapping[str, Any], where: str) -> Block:
    detail = image.get("detail", "auto")
    if detail != "auto":
        raise InvalidRequestError(
            f"{where}.image_url.detail {detail!r} has no Anthropic equivalent (only 'auto')"
        )
    url = image["url"]
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _data_url(url, f"{where}.image_url.url")
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in IMAGE_TYPES:
        raise InvalidRequestError(
            f"{where} is an image of type {media_type}; Anthropic takes "
            + ", ".join(sorted(IMAGE_TYPES))
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document(file: Mapping[str, Any], where: str) -> Block:
    if "file_data" not in file:
        raise InvalidRequestError(
            f"{where}.file.file_id names a file stored with another API; send file_data instead"
        )
    media_type, data = _data_url(file["file_data"], f"{where}.file.file_data")
    if media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequestError(
                f"{where}.file.file_data is not base64 of UTF-8 text"
            ) from None
        source = {"type": "text", "media_type": media_type, "data": text}
    else:
        raise InvalidRequestError(
            f"{where} is a file of type {media_type}; "
            "Anthropic takes application/pdf and text/plain"
        )
    block: Block = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 data) of a base64 data URL."""
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequestError(
            f"{where} must be an http(s) URL or a base64 data URL (data:TYPE;base64,...)"
        )
    return match[1].lower(), match[3]


def _assistant_blocks(message: Mapping[str, Any], content: Any, where: str) -> list[Block]:
    blocks = []
    for number, part in enumerate(_parts(content)):
        text = part.get("text") if part["type"] == "text" else part.get("refusal")
        if part["type"] not in ("text", "refusal"):
            raise InvalidRequestError(
                f"{where}.content[{number}] has type {part['type']!r}, which Anthropic cannot take"
            )
        if text:
            blocks.append({"type": "text", "text": text})
    if message.get("refusal"):
        blocks.append({"type": "text", "text": message["refusal"]})
    for number, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": function["name"],
                "input": _input(function["arguments"], f"{where}.tool_calls[{number}]"),
            }
        )
    return blocks


def _input(arguments: str, where: str) -> Any:
    """A tool call's JSON arguments as Anthropic's `input` object ("" means no arguments)."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        raise InvalidRequestError(f"{where}.function.arguments is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where}.function.arguments must be a JSON object")
    return value


def _tool_result(message: Mapping[str, Any], content: Any, where: str) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    block["content"] = content if isinstance(content, str) else _texts(content, where)
    return block


def _max_tokens(given: Mapping[str, Any], default: int) -> int:
    values = {
        _count(name, given[name])
        for name in ("max_tokens", "max_completion_tokens")
        if name in given
    }
    if len(values) > 1:
        raise InvalidRequestError("max_tokens and max_completion_tokens disagree; give one")
    return values.pop() if values else default


def _check_neutral(given: Mapping[str, Any]) -> None:
    """Parameters accepted only with the value that asks for nothing Anthropic does not do."""
    if given.get("n", 1) != 1 or isinstance(given.get("n"), bool):
        raise InvalidRequestError("n must be 1: Anthropic returns one answer")
    if given.get("logprobs", False) is not False:
        raise InvalidRequestError("logprobs has no Anthropic equivalent")
    response_format = given.get("response_format", {"type": "text"})
    if not isinstance(response_format, Mapping) or response_format.get("type") != "text":
        raise InvalidRequestError("response_format other than text has no Anthropic equivalent")
    options = given.get("stream_options", {})
    if not isinstance(options, Mapping) or not set(options) <= {"include_usage"}:
        raise InvalidRequestError(
            "stream_options may hold only include_usage (Anthropic always reports usage)"
        )


def _unit(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidRequestError(f"{name} must be a number from 0 to 1 for Anthropic")
    return value


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{name} must be a positive integer")
    return value


def _stop(value: Any) -> list[str]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        raise InvalidRequestError("stop must be a string or a list of strings")
    return stops


def _user_id(given: Mapping[str, Any]) -> str | None:
    ids = set()
    for name in ("user", "safety_identifier"):
        if name in given:
            if not isinstance(given[name], str):
                raise InvalidRequestError(f"{name} must be a string")
            ids.add(given[name])
    if len(ids) > 1:
        raise InvalidRequestError("user and safety_identifier disagree; give one")
    return ids.pop() if ids else None


def _list(given: Mapping[str, Any], name: str) -> list[Any]:
    value = given[name]
    if not isinstance(value, list):
        raise InvalidRequestError(f"{name} must be a list")
    return value


def _tool(tool: Any, where: str) -> Block:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        raise InvalidRequestError(f"{where} must be a {{'type': 'function', 'function': ...}}")
    function = tool.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"{where}.function must be an object with a 'name'")
    if function.get("strict"):
        raise InvalidRequestError(f"{where}.function.strict has no Anthropic equivalent")
    block: Block = {"name": function["name"]}
    description = function.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise InvalidRequestError(f"{where}.function.description must be a string")
        block["description"] = description
    schema = function.get("parameters")
    if schema is not None and not isinstance(schema, Mapping):
        raise InvalidRequestError(f"{where}.function.parameters must be a JSON schema object")
    block["input_schema"] = {"type": "object", "properties": {}} if schema is None else schema
    return block


def _tool_choice(given: Mapping[str, Any]) -> Block | None:
    choice = given.get("tool_choice")
    translated: Block | None = None
    if isinstance(choice, str) and choice in _CHOICES:
        translated = {"type": _CHOICES[choice]}
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequestError("tool_choice.function must be an object with a 'name'")
        translated = {"type": "tool", "name": function["name"]}
    elif choice is not None:
        raise InvalidRequestError(
            "tool_choice must be 'auto', 'none', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}"
        )
    parallel = given.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise InvalidRequestError("parallel_tool_calls must be true or false")
    if not parallel:
        translated = translated or {"type": "auto"}
        if translated["type"] != "none":
            translated["disable_parallel_tool_use"] = True
    return translated
