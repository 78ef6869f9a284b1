"""The JSON payloads of the chat-completions wire format, and bounded excerpts for errors.

Shared by every plugin that speaks that format (CodeLinkAva, OpenAI-compatible endpoints);
free of aiohttp, so plugins may import it at module level.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Final

from .errors import MalformedStreamError
from .sse import ServerSentEvent

EXCERPT_CHARS = 300
"""How much of an upstream's text an error keeps."""


class _Done:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DONE"


DONE: Final[Any] = _Done()
"""Stands for `data: [DONE]`, the end marker of an OpenAI-style stream, in `event_payloads`."""
_ONLY_DONE = (DONE,)
_loads = json.loads


def excerpt(text: str | bytes) -> str:
    """The first EXCERPT_CHARS characters of `text` (bytes are decoded leniently)."""
    if isinstance(text, bytes):
        text = text[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    return text[:EXCERPT_CHARS]


def event_payloads(event: ServerSentEvent, provider: str) -> Iterable[Any]:
    """The JSON documents an event carries, in order, with `DONE` standing for `[DONE]`.

    An event normally carries one document. A line-oriented upstream that never sends the blank
    line ending an event gets its data lines joined into one event (`{a}\n{b}\n[DONE]`); when
    such data is not one JSON document, each non-empty line is a payload, parsed lazily (a bad
    line raises only once the documents before it were taken, as a bad event would), and
    nothing after `[DONE]` is parsed. Anything else raises MalformedStreamError naming the
    provider.
    """
    data = event.data
    if data == "[DONE]":
        return _ONLY_DONE
    try:
        return (_loads(data),)
    except ValueError:
        if "\n" not in data:
            raise MalformedStreamError(provider, "malformed event", excerpt=excerpt(data)) from None
    return _line_payloads(data, provider)


def _line_payloads(data: str, provider: str) -> Iterator[Any]:
    for line in data.split("\n"):
        if line == "[DONE]":
            yield DONE
            return
        if line.strip():
            try:
                payload = _loads(line)
            except ValueError:
                raise MalformedStreamError(
                    provider, "malformed event", excerpt=excerpt(line)
                ) from None
            yield payload


def error_text(error: Any) -> str:
    """The message of an OpenAI-style error object (`{"message": ...}` or a string), bounded."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return excerpt(error["message"])
    return excerpt(str(error))


def error_message(body: str) -> str:
    """The upstream's own explanation from an error body (`{"error": {...}}`), else an excerpt."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error", document)
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str):
            return excerpt(message)
    return excerpt(" ".join(body.split()))
