"""Parsing OpenAI chat-completions answers: streamed chunks and whole completions.

The streaming path works on the batches `providerhub.http.read_events` yields (one per network
read), so the per-event work is one `json.loads` and a few dict lookups. Payload and excerpt
rules are the shared ones of `providerhub.payloads` (which does not import aiohttp).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providerhub import MalformedStreamError, ServerSentEvent, UpstreamError
from providerhub.payloads import DONE, error_text, event_payloads, excerpt


@dataclass(slots=True)
class Completion:
    """What a call reported besides its text, filled in while the answer arrives.

    `finish_reason` ("stop", "length", ...) comes with the last content chunk; `usage` (the
    upstream's token counts, e.g. `{"prompt_tokens": 9, "completion_tokens": 12, ...}`) comes
    only when the request asks for it with `stream_options={"include_usage": True}` or on a
    non-streaming call. Both are final once the text iterator is exhausted.
    """

    id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


def parse_events(
    events: Sequence[ServerSentEvent], completion: Completion, provider: str
) -> tuple[str, bool]:
    """The text of a batch of chat.completion.chunk events, and whether `[DONE]` ended it.

    Role-only and empty deltas add nothing; `finish_reason`, `usage`, `id` and `model` go to
    `completion`. An event that is not JSON or not chunk-shaped raises MalformedStreamError; an
    error object sent inside the stream raises UpstreamError with the upstream's message.
    """
    parts: list[str] = []
    loads = json.loads
    data = ""
    try:
        for event in events:
            data = event.data
            if data == "[DONE]":
                return "".join(parts), True
            try:
                chunks: tuple[Any, ...] = (loads(data),)
            except ValueError:
                chunks = event_payloads(event, provider)
            for chunk in chunks:
                if chunk is DONE:
                    return "".join(parts), True
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content:
                            parts.append(content)
                    reason = choice.get("finish_reason")
                    if reason:
                        completion.finish_reason = reason
                elif "error" in chunk:
                    message = error_text(chunk["error"])
                    raise UpstreamError(provider, f"error in stream: {message}")
                usage = chunk.get("usage")
                if usage:
                    completion.usage = usage
                if completion.id is None:
                    completion.id = chunk.get("id")
                    completion.model = chunk.get("model")
        return "".join(parts), False
    except ValueError:
        raise MalformedStreamError(provider, "malformed event", excerpt=excerpt(data)) from None
    except (AttributeError, TypeError, IndexError, KeyError):
        raise MalformedStreamError(
            provider, "event is not a chat.completion.chunk", excerpt=excerpt(data)
        ) from None


def parse_completion(raw: bytes, completion: Completion, provider: str) -> str:
    """The text of a non-streamed chat.completion body; the rest goes to `completion`."""
    try:
        document = json.loads(raw)
        choice = document["choices"][0]
        content = choice["message"].get("content") or ""
        if not isinstance(content, str):
            raise TypeError(content)
        completion.finish_reason = choice.get("finish_reason")
        completion.usage = document.get("usage") or None
        completion.id = document.get("id")
        completion.model = document.get("model")
    except ValueError:
        raise MalformedStreamError(provider, "malformed completion", excerpt=excerpt(raw)) from None
    except (AttributeError, TypeError, IndexError, KeyError):
        raise MalformedStreamError(
            provider, "body is not a chat.completion", excerpt=excerpt(raw)
        ) from None
    return content
