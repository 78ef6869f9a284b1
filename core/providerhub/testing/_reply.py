"""What a FakeUpstream does with one request: `Reply`, built with its class methods."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._render import pieces

WireFormat = Literal["openai", "anthropic", "ndjson"]
"""How a FakeUpstream answers: OpenAI chat-completions SSE, Anthropic Messages named-event SSE,
or NDJSON (Ollama's /api/chat)."""
LineEnding = Literal["\n", "\r\n", "\r"]


@dataclass(frozen=True, slots=True)
class ToolCallScript:
    """One function call a scripted answer makes; an empty `id` is sent as `call_<index>`
    (Anthropic: `toolu_<index>`; NDJSON sends none)."""

    name: str
    arguments: str
    id: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the upstream does with one request, in any wire format. Build one with the class
    methods; the module docstring of `providerhub.testing` says how each format renders it."""

    chunks: tuple[str, ...] = ()
    status: int = 200
    body: str | None = None
    """An error's body verbatim; None: the wire format's own error body, from `message`."""
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = "upstream error"
    """What an HTTP error's body or an in-stream error event says."""
    error_type: str | None = None
    """The error's type (Anthropic: "overloaded_error", ...); None: the one its status implies."""
    hang_before_headers: bool = False
    hang_after: int | None = None
    """Stall after this many deltas (content, tool-call and refusal ones) or scripted events."""
    close_after: int | None = None
    malformed_after: int | None = None
    error_after: int | None = None
    """Send an in-stream error event after this many deltas, and nothing after it."""
    delay: float = 0.0
    """Seconds to wait before each chunk (slow chunks)."""
    split: int | None = None
    """Write the body in pieces of this many bytes, pausing between them (awkward TCP reads)."""
    line_ending: LineEnding = "\n"
    keepalive: bool = False
    """Send a keep-alive before each event: an SSE comment (OpenAI), a `ping` event
    (Anthropic), an empty line (NDJSON)."""
    done: bool = True
    """End with the format's terminator: `data: [DONE]`, `message_stop`, the `"done": true`
    line."""
    finish_reason: str | None = "stop"
    """In OpenAI's terms; Anthropic's stop_reason and NDJSON's done_reason translate it."""
    stop_sequence: str | None = None
    """The stop sequence an Anthropic answer reports (with finish_reason "stop_sequence")."""
    model: str = "fake-model"
    usage: Mapping[str, int] | None = None
    """Token counts in the format's own names. OpenAI: a final chunk when the request asks
    `stream_options.include_usage`; Anthropic: message_start and message_delta (zeros if None);
    NDJSON: merged into the done line."""
    after_done: tuple[str, ...] = ()
    """Event data sent after the terminator (a client must never read it)."""
    end: Literal["eof", "hang", "close"] = "eof"
    """After the last event: end the response, stall with it open, or drop the connection."""
    trickle: float | None = None
    """Send the stream's opening, then only keep-alives, one every this many seconds."""
    raw: bytes | None = None
    """Send these bytes verbatim as the body (cut by `split`) instead of rendering events."""
    tool_calls: tuple[ToolCallScript, ...] = ()
    """Function calls streamed after the content."""
    argument_fragment: int = 8
    """Characters per streamed piece of tool-call arguments and of a refusal."""
    interleave_tool_calls: bool = False
    """Send the calls' argument pieces round-robin after all their first deltas (OpenAI only)."""
    refusal: str | None = None
    """A refusal streamed after the content (OpenAI: `delta.refusal`; Anthropic: text with
    stop_reason "refusal"; NDJSON: text)."""
    logprobs: bool = False
    """Give each content chunk a logprobs entry (OpenAI only)."""
    verbatim_events: tuple[str, ...] | None = None
    """Send exactly these event datas: no opening, final events or terminator."""

    def __post_init__(self) -> None:
        if self.argument_fragment < 1:
            raise ValueError("argument_fragment must be at least 1")

    @classmethod
    def text(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks` as content deltas, then the terminator."""
        return cls(chunks=tuple(chunks), **options)

    @classmethod
    def tool_call(
        cls,
        *calls: ToolCallScript | tuple[str, str],
        text: str = "",
        fragment: int = 8,
        **options: Any,
    ) -> Reply:
        """Stream `text` if any, then each call (a script or `(name, arguments)`): its id and
        name, then the arguments in `fragment`-character pieces (NDJSON: whole, as an object).
        `finish_reason` is "tool_calls" unless given."""
        scripts = tuple(c if isinstance(c, ToolCallScript) else ToolCallScript(*c) for c in calls)
        options.setdefault("finish_reason", "tool_calls")
        chunks = (text,) if text else ()
        return cls(chunks=chunks, tool_calls=scripts, argument_fragment=fragment, **options)

    @classmethod
    def refusal_text(cls, text: str, **options: Any) -> Reply:
        """Stream a refusal in pieces of `argument_fragment` characters."""
        return cls(refusal=text, **options)

    @classmethod
    def events(cls, *data: Mapping[str, Any] | str, **options: Any) -> Reply:
        """Send each item as one event's data, a mapping as JSON and a string as it is, and
        nothing else (no opening, final events or terminator). Stream options still apply; the
        non-streamed OpenAI answer merges the deltas of the events that are chunks."""
        datas = tuple(item if isinstance(item, str) else json.dumps(dict(item)) for item in data)
        return cls(verbatim_events=datas, **options)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "upstream error",
        *,
        retry_after: str | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
        error_type: str | None = None,
    ) -> Reply:
        """An HTTP error with the format's error body (or `body` verbatim), maybe Retry-After."""
        merged = dict(headers or {})
        if retry_after is not None:
            merged["Retry-After"] = retry_after
        return cls(status=status, body=body, headers=merged, message=message, error_type=error_type)

    @classmethod
    def hang(cls) -> Reply:
        """Accept the request and never send headers."""
        return cls(hang_before_headers=True)

    @classmethod
    def hang_after_chunks(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks`, then stall forever with the connection open."""
        return cls(chunks=chunks, hang_after=len(chunks), **options)

    @classmethod
    def close_after_chunks(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks`, then drop the connection without ending the response."""
        return cls(chunks=chunks, close_after=len(chunks), **options)

    @classmethod
    def malformed_after_chunks(cls, *chunks: str, **options: Any) -> Reply:
        """Stream `chunks`, then an event whose data is not JSON."""
        return cls(chunks=chunks, malformed_after=len(chunks), **options)

    @classmethod
    def error_after_chunks(
        cls,
        *chunks: str,
        message: str = "Overloaded",
        error_type: str = "overloaded_error",
        **options: Any,
    ) -> Reply:
        """Stream `chunks`, then an in-stream error event, and end there."""
        return cls(
            chunks=chunks,
            error_after=len(chunks),
            message=message,
            error_type=error_type,
            **options,
        )

    @classmethod
    def empty(cls) -> Reply:
        """A successful stream with no content at all, just the terminator."""
        return cls(finish_reason=None)

    @classmethod
    def keepalive_trickle(cls, interval: float = 0.05) -> Reply:
        """Answer 200 and send keep-alives forever: bytes flow, text never comes."""
        return cls(trickle=interval)

    @classmethod
    def raw_bytes(cls, body: bytes, **options: Any) -> Reply:
        """Send `body` verbatim (e.g. a pre-rendered stream from `wire()`, or hand-made bytes)."""
        return cls(raw=body, **options)

    def wire(self, payload: Mapping[str, Any] | None = None, wire: WireFormat = "openai") -> bytes:
        """The whole streamed body this reply sends in format `wire`, pauses and faults left
        out."""
        if self.trickle is not None:
            raise ValueError("a keep-alive trickle has no end")
        body = pieces(self, payload or {}, wire)
        return b"".join(piece for piece in body if isinstance(piece, bytes))

    @classmethod
    def huge_line(cls, size: int = 256 * 1024) -> Reply:
        """One content chunk of `size` characters: an event line larger than any read buffer."""
        return cls(chunks=("x" * size,))
