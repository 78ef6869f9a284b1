"""The chat-completions wire format (OpenAI's, which most upstreams speak), for plugin authors.

A plugin whose upstream streams `chat.completion.chunk` events reads their data in batches
with `providerhub.http.read_data` and hands each batch to `parse_events`: out come providerhub
events (text, tool-call deltas, refusals, logprobs), while the `Completion` it fills keeps
`finish_reason`, `usage`, `id` and `model`. `parse_completion` does the same for a non-streamed
`chat.completion` body, and `CompletionStream` is a stream carrying its `Completion`. For other
JSON-over-SSE shapes: `event_payloads` (the documents of one event, `DONE` for `[DONE]`),
`error_text` and `error_message` (an upstream's own error message), `excerpt` (bounded text
for errors).

Parsing costs per event one JSON decode (`providerhub.jsonload`: msgspec's with the `fast`
extra) and a few dict lookups; a text delta shaped like the stream's first one costs no decode
at all (`_textshape`). What one batch holds is
emitted in order with neighbours of a kind merged (text joined, a tool call's argument
fragments joined), so the events describe the same answer however TCP split the bytes. A bad
event, or an error the upstream sent in the stream, raises only after everything before it
was handed out. No aiohttp import: plugins may import this module at module level.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from . import jsonload
from ._deltas import Batch, CallNumbers, optional_strings
from ._textshape import TRIES, TextShape
from .errors import MalformedStreamError, UpstreamError
from .events import Event
from .redaction import redact
from .sse import ServerSentEvent, data_of
from .stream import ChunkStream

__all__ = [
    "BAD_PAYLOAD",
    "DONE",
    "EXCERPT_CHARS",
    "NOT_JSON",
    "Completion",
    "CompletionStream",
    "error_message",
    "error_text",
    "event_payloads",
    "excerpt",
    "parse_completion",
    "parse_events",
]

EXCERPT_CHARS = 300
"""How much of an upstream's text an error keeps."""


class _Done:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DONE"


DONE: Final[Any] = _Done()
"""Stands for `data: [DONE]`, the end marker of an OpenAI-style stream, in `event_payloads`."""
_ONLY_DONE = (DONE,)
NOT_JSON = (ValueError, RecursionError)
"""What `jsonload.loads` raises for text that is not JSON, or JSON nested deeper than Python
can recurse (an upstream's `[[[[...]]]]`)."""


def excerpt(text: str | bytes) -> str:
    """The first EXCERPT_CHARS characters of `text` (bytes are decoded leniently), remembered
    secrets redacted first, so a key the cut would halve cannot leave half of itself."""
    if isinstance(text, bytes):
        text = text[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    return redact(text[: EXCERPT_CHARS * 4])[:EXCERPT_CHARS]


def event_payloads(event: str | ServerSentEvent, provider: str) -> Iterable[Any]:
    """The JSON documents an event (its data, or a ServerSentEvent) carries, in order, with
    `DONE` standing for `[DONE]`.

    An event normally carries one document. A line-oriented upstream that never sends the blank
    line ending an event gets its data lines joined into one event (`{a}\n{b}\n[DONE]`); when
    such data is not one JSON document, each non-empty line is a payload, parsed lazily (a bad
    line raises only once the documents before it were taken, as a bad event would), and
    nothing after `[DONE]` is parsed. Anything else raises MalformedStreamError naming the
    provider.
    """
    data = event if isinstance(event, str) else event.data
    if data == "[DONE]":
        return _ONLY_DONE
    return (payload for _, payload in _payloads(data, provider))


def _payloads(data: str, provider: str) -> Iterable[tuple[str, Any]]:
    """Each document of an event's `data` with the text it came from (`event_payloads`)."""
    try:
        return ((data, jsonload.loads(data)),)
    except NOT_JSON:
        if "\n" not in data:
            raise MalformedStreamError(provider, "malformed event", excerpt=excerpt(data)) from None
    return _line_payloads(data, provider)


def _line_payloads(data: str, provider: str) -> Iterator[tuple[str, Any]]:
    for line in data.split("\n"):
        if line == "[DONE]":
            yield line, DONE
            return
        if line.strip():
            try:
                payload = jsonload.loads(line)
            except NOT_JSON:
                raise MalformedStreamError(
                    provider, "malformed event", excerpt=excerpt(line)
                ) from None
            yield line, payload


def error_text(error: Any) -> str:
    """The message of an OpenAI-style error object (`{"message": ...}` or a string), bounded."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return excerpt(error["message"])
    return excerpt(str(error))


def error_message(body: str) -> str:
    """The upstream's own explanation from an error body (`{"error": {...}}`), else an excerpt."""
    try:
        document = jsonload.loads(body)
    except NOT_JSON:
        document = None
    if isinstance(document, dict):
        error = document.get("error", document)
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str):
            return excerpt(message)
    return excerpt(" ".join(body.split()))


@dataclass(slots=True)
class Completion:
    """What a call reported besides its events, filled in while the answer arrives.

    `finish_reason` ("stop", "length", "tool_calls", ...) comes with the last choice chunk;
    `usage` (the upstream's token counts, e.g. `{"prompt_tokens": 9, "completion_tokens": 12,
    ...}`) with a usage chunk (streamed requests ask for one with
    `stream_options.include_usage`) or with a non-streamed completion. Both are final once the
    stream is exhausted.
    """

    id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    calls: CallNumbers = field(default_factory=CallNumbers, repr=False, compare=False)
    """How the stream's tool-call deltas map to calls (kept across network reads)."""
    shape: TextShape = field(default_factory=TextShape, repr=False, compare=False)
    """The stream's common text chunk, once one was seen (kept across network reads)."""


BAD_PAYLOAD = (*NOT_JSON, AttributeError, TypeError, IndexError, KeyError)
"""What parsing raises for text that is not JSON (`NOT_JSON`) or JSON of the wrong shape."""


def _malformed(
    exc: Exception, provider: str, text: str | bytes, not_json: str, not_shaped: str
) -> MalformedStreamError:
    """The error for `text` that failed to parse with `exc`: `not_json` or `not_shaped`."""
    problem = not_json if isinstance(exc, NOT_JSON) else not_shaped
    return MalformedStreamError(provider, problem, excerpt=excerpt(text))


def parse_events(
    events: Sequence[str] | Sequence[ServerSentEvent],
    completion: Completion,
    provider: str,
    out: list[Event],
) -> bool:
    """Append the events of a batch of chat.completion.chunk events to `out`; True once
    `[DONE]` ended the stream.

    `events` is a batch of the events' data (`http.read_data`) or of `ServerSentEvent`s.
    Role-only and empty deltas add nothing; `finish_reason`, `usage`, `id` and `model` go to
    `completion`. An event that is not JSON or not chunk-shaped raises MalformedStreamError,
    an error object sent inside the stream UpstreamError with the upstream's message; either
    way `out` already holds every event before the offending one.
    """
    batch = Batch(out, completion.calls)
    add_text = batch.text.append
    loads = jsonload.loads
    shape = completion.shape
    prefix, suffix, least = shape.prefix, shape.suffix, shape.least
    data = ""
    try:
        for data in data_of(events):
            if data.startswith(prefix) and data.endswith(suffix) and len(data) >= least:
                text = data[len(prefix) : len(data) - len(suffix)]
                if '"' not in text and "\\" not in text and text.isprintable():
                    if batch.tool is None:
                        if text:
                            add_text(text)  # the common case: no JSON decoded (`_textshape`)
                    else:
                        batch.delta({"content": text})
                    continue
            if data == "[DONE]":
                return True
            try:
                chunks: Iterable[tuple[str, Any]] = ((data, loads(data)),)
            except NOT_JSON:
                chunks = _payloads(data, provider)
            for data, chunk in chunks:  # `data` is what an error quotes
                if chunk is DONE:
                    return True
                plain = False
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        plain = content.__class__ is str and len(delta) == 1
                        if plain and batch.tool is None:
                            if content:
                                add_text(content)  # a text delta alone
                        else:
                            batch.delta(delta)
                    logprobs = choice.get("logprobs")
                    if logprobs:
                        plain = False
                        batch.add_logprobs(logprobs)
                    reason = choice.get("finish_reason")
                    if reason:
                        if not isinstance(reason, str):
                            raise TypeError(reason)
                        plain = False
                        completion.finish_reason = reason
                elif "error" in chunk:
                    message = error_text(chunk["error"])
                    raise UpstreamError(provider, f"error in stream: {message}")
                usage = chunk.get("usage")
                if usage:
                    if not isinstance(usage, dict):
                        raise TypeError(usage)
                    plain = False
                    completion.usage = usage
                if completion.id is None:
                    completion.id = chunk.get("id")
                    completion.model = chunk.get("model")
                if plain and shape.tries < TRIES:
                    shape.learn(data, chunk, loads)
                    prefix, suffix, least = shape.prefix, shape.suffix, shape.least
        return False
    except MalformedStreamError:
        raise
    except BAD_PAYLOAD as exc:
        raise _malformed(
            exc, provider, data, "malformed event", "event is not a chat.completion.chunk"
        ) from None
    finally:
        batch.finish()


def parse_completion(raw: bytes, completion: Completion, provider: str) -> list[Event]:
    """The events of a non-streamed chat.completion body; the rest goes to `completion`."""
    out: list[Event] = []
    batch = Batch(out, completion.calls)
    try:
        document = jsonload.loads(raw)
        choice = document["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError(content)
        calls = message.get("tool_calls") or []
        batch.delta(
            {
                "content": content,
                "refusal": message.get("refusal"),
                "tool_calls": [{"index": index, **call} for index, call in enumerate(calls)],
            }
        )
        if choice.get("logprobs"):
            batch.add_logprobs(choice["logprobs"])
        batch.finish()
        reason, usage = choice.get("finish_reason"), document.get("usage") or None
        if not optional_strings(reason) or not (usage is None or isinstance(usage, dict)):
            raise TypeError(reason)
        completion.finish_reason = reason
        completion.usage = usage
        completion.id = document.get("id")
        completion.model = document.get("model")
    except BAD_PAYLOAD as exc:
        raise _malformed(
            exc, provider, raw, "malformed completion", "body is not a chat.completion"
        ) from None
    return out


class CompletionStream(ChunkStream):
    """One answer (text when iterated, every event from `events()`); `finish_reason` and
    `usage` are final once it is exhausted.

    Use it with `async with` (or call `aclose()`) to close the connection when stopping early.
    """

    __slots__ = ("completion",)

    def __init__(self, events: AsyncIterator[Event], completion: Completion) -> None:
        super().__init__(events)
        self.completion = completion

    @property
    def finish_reason(self) -> str | None:
        """Why the upstream stopped ("stop", "length", "tool_calls", ...), once it said so."""
        return self.completion.finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        """The upstream's token counts, once it sent them."""
        return self.completion.usage
