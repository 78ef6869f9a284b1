"""Incremental server-sent-events decoder: bytes in, events out, whatever the TCP chunking.

A plugin gets batches from `providerhub.http`: `read_data` yields each event's data (what a
JSON-over-SSE parser needs, with no object per event), `read_events` whole `ServerSentEvent`s
(with the event name, id and retry). Both run an `SSEDecoder` over the response; a plugin
reading bytes some other way feeds its own decoder. Follows the WHATWG event-stream rules:
lines end in LF, CRLF or CR; a leading BOM is dropped; `data:` lines accumulate (joined by LF)
until a blank line dispatches the event (a block with no data dispatches nothing); lines
starting with `:` are comments; `id` persists across events. No aiohttp import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

__all__ = ["SSEDecoder", "ServerSentEvent", "data_of"]


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event. `data` is the joined data lines, decoded as UTF-8."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


def data_of(batch: Sequence[str] | Sequence[ServerSentEvent]) -> Sequence[str]:
    """The data of each event of a batch of either kind (`read_data`'s or `read_events`')."""
    if batch and batch[0].__class__ is not str:
        return [event.data for event in cast("Sequence[ServerSentEvent]", batch)]
    return cast("Sequence[str]", batch)


_SEPARATOR = "\n\ndata: "
"""Between two events that are one `data: ` line each: the common stream, framed in one split."""


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far.

    `feed` returns `ServerSentEvent`s, `feed_data` only their data (use one of the two on a
    stream). What one read completes is decoded from UTF-8 once (invalid bytes become U+FFFD,
    as they would line by line) and, when it is the common shape (every event one `data: `
    line, nothing pending), framed by one split. A line is handled as soon as its terminator
    arrives (a CR ending one read is not held back waiting for a possible LF). `max_line`
    bounds the bytes held for one unfinished line and the data accumulated for one undispatched
    event (counted as UTF-8 of the decoded text, so an invalid byte counts as its replacement's
    three), so a hostile upstream cannot make the decoder buffer without limit (ValueError past
    it); a long line costs linear time however many reads it spans.
    """

    __slots__ = (
        "_counted",
        "_data",
        "_data_size",
        "_event",
        "_held",
        "_id",
        "_parts",
        "_retry",
        "_skip_lf",
        "_started",
        "max_line",
    )

    def __init__(self, max_line: int = 16 * 1024 * 1024) -> None:
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._held = 0
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._counted = 0
        self._data_size = 0
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume `chunk`; return the events it completed, in order."""
        text = self._lines(chunk)
        if text is None:
            return []
        if not self._data and self._event is None and _simple(text):
            last_id, retry = self._id, self._retry
            return [ServerSentEvent(data, "message", last_id, retry) for data in _split(text)]
        return cast("list[ServerSentEvent]", self._events(text, named=True))

    def feed_data(self, chunk: bytes) -> list[str]:
        """Consume `chunk`; return the data of each event it completed, in order."""
        text = self._lines(chunk)
        if text is None:
            return []
        if not self._data and _simple(text):
            self._event = None
            return _split(text)
        return cast("list[str]", self._events(text, named=False))

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: dispatch the pending event even though no blank line ended it.

        Strictly the spec discards it; line-oriented upstreams (and the seed's reader) rely on it.
        """
        return cast("list[ServerSentEvent]", self._flush(named=True))

    def flush_data(self) -> list[str]:
        """End of stream for `feed_data`: the data of the pending event (`flush`)."""
        return cast("list[str]", self._flush(named=False))

    def _flush(self, named: bool) -> list[ServerSentEvent | str]:
        text = self._lines(b"\n") if self._parts else None
        events = [] if text is None else self._events(text, named)
        self._skip_lf = False
        if self._data:
            events.append(self._dispatch(named))
        self._event = None
        return events

    def _lines(self, chunk: bytes) -> str | None:
        """The lines `chunk` completes, decoded, without the last line's ending; None if none.

        The unfinished rest is held for the next read.
        """
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:  # the LF of a CRLF cut between two reads
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk[-1] == 13
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                self._hold(chunk)
            return None
        complete = chunk[:end]
        if self._parts:
            self._parts.append(complete)
            complete = b"".join(self._parts)
            self._parts = []
            self._held = 0
        if end + 1 < len(chunk):
            self._hold(chunk[end + 1 :])
        text = complete.decode("utf-8", "replace")
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        return text

    def _events(self, text: str, named: bool) -> list[ServerSentEvent | str]:
        """Dispatch what the complete lines of `text` finish, line by line (any shape)."""
        events: list[ServerSentEvent | str] = []
        data = self._data
        for line in text.split("\n"):
            if line.startswith("data:"):
                data.append(line[6:] if line[5:6] == " " else line[5:])
            elif not line:
                if data:
                    events.append(self._dispatch(named))
                    data = self._data
                else:
                    self._event = None
            elif line[0] != ":":  # ":" starts a comment
                self._field(line)
        if data:
            self._count(data)
        return events

    def _hold(self, piece: bytes) -> None:
        self._parts.append(piece)
        self._held += len(piece)
        if self._held > self.max_line:
            raise ValueError(f"event-stream line longer than {self.max_line} bytes")

    def _count(self, data: list[str]) -> None:
        """Add the data lines this read left pending to the event's size (each counted once)."""
        counted = self._counted
        self._counted = len(data)
        for index in range(counted, len(data)):
            self._data_size += len(data[index].encode())
        if self._data_size + self._held > self.max_line:
            raise ValueError(f"event-stream event longer than {self.max_line} bytes")

    def _field(self, line: str) -> None:
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        elif name == "data":
            self._data.append(value)

    def _dispatch(self, named: bool) -> ServerSentEvent | str:
        data = self._data
        text = data[0] if len(data) == 1 else "\n".join(data)
        self._data = []
        self._counted = 0
        self._data_size = 0
        event = self._event
        self._event = None
        if named:
            return ServerSentEvent(text, event or "message", self._id, self._retry)
        return text


def _simple(text: str) -> bool:
    """Whether complete lines `text` are only whole events of one `data: ` line each.

    Then every line ending but the last is inside a separator, and the last line is blank.
    """
    return (
        text.startswith("data: ")
        and text.endswith("\n")
        and text.count("\n") == 2 * text.count(_SEPARATOR) + 1
    )


def _split(text: str) -> list[str]:
    return text[6:-1].split(_SEPARATOR)
